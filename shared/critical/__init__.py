"""Critical lab results: detection and routing (``rules``), the alert's life (``alerts``).

A result announced final or corrected (``result.available``) is checked by notify; a critical one gets
one alert (unique per result), is sent to the team its facility/ward routes to (``shared.notify.critical``),
escalated by the ``critical-escalation`` job when nobody acknowledges it in time, and acknowledged
through the api. docs/critical-results.md.
"""
