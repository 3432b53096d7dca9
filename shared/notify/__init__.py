"""Patient notifications without a database: rendering, channels (providers) and quiet hours.

Importing this package is cheap: Jinja2 is imported on the first render and boto3 on the first
AWS send. The notify function's service decides consent, quiet hours and bookkeeping; this
package only renders and sends.

The ``render`` function is not re-exported here on purpose: a package attribute named like the
submodule would hide ``shared.notify.render`` (``import shared.notify.render as m`` would give the
function). Use ``from shared.notify.render import render``.
"""

from shared.notify.providers import (
    DEFAULT_OUTBOX_DIR,
    AwsProvider,
    ConsoleProvider,
    PermanentProviderError,
    Provider,
    ProviderError,
    TransientProviderError,
    make_provider,
)
from shared.notify.quiet_hours import in_quiet_hours, next_allowed_send
from shared.notify.render import (
    PORTAL_URL_MAX_LENGTH,
    Rendered,
    SmsTooLong,
    TemplateContextError,
    TemplateError,
    UnknownTemplate,
    check_templates,
    kinds,
    languages,
    resolve_language,
)
from shared.notify.sms import MAX_SEGMENTS, sms_segments

__all__ = [
    "DEFAULT_OUTBOX_DIR",
    "MAX_SEGMENTS",
    "PORTAL_URL_MAX_LENGTH",
    "AwsProvider",
    "ConsoleProvider",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "Rendered",
    "SmsTooLong",
    "TemplateContextError",
    "TemplateError",
    "TransientProviderError",
    "UnknownTemplate",
    "check_templates",
    "in_quiet_hours",
    "kinds",
    "languages",
    "make_provider",
    "next_allowed_send",
    "resolve_language",
    "sms_segments",
]
