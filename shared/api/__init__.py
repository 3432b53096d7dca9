"""The api function's routes. Importing this package registers every route on the route table."""

from shared.api import audit_routes, health, patients  # noqa: F401
