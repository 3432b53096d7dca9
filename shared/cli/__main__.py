"""``python -m shared.cli``: the ``patient-mgt`` command without its console script."""

import sys

from shared.cli import main

sys.exit(main())
