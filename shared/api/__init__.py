"""The api function's routes. Importing this package registers every route on the route table."""

from shared.api import audit_routes, health, patients  # noqa: F401
from shared.api import history, openapi, orders, patient_merge  # noqa: F401
from shared.api import events_routes  # noqa: F401
from shared.api import notifications_routes  # noqa: F401
from shared.api import jobs_routes  # noqa: F401
from shared.api import lis_routes  # noqa: F401
from shared.api import metrics_routes  # noqa: F401
from shared.api import fhir_routes  # noqa: F401
from shared.api import fhir_export_routes  # noqa: F401
from shared.api import results  # noqa: F401
from shared.api import critical_routes  # noqa: F401
