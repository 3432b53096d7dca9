"""The console's pages. Importing this module registers every page on the console's table."""

from shared.console import auth_pages, overview_page  # noqa: F401
from shared.console import lis_pages, patient_pages  # noqa: F401
from shared.console import dead_letter_pages, job_pages, notification_pages  # noqa: F401
