"""The api function's routes, one module per area.

Importing this package registers none of them: it hands the route table the index of which module
registers each route (``shared.api.index``), and the table imports a module when a request first
matches one of its routes, so the first request's path carries only what it uses. ``load_all()``
registers every route (OpenAPI, and the tests that walk the whole table).
"""

from shared.api.index import PREFIX_RENDERER_MODULES, ROUTE_MODULES
from shared.http.routing import Route, load_all, use_index

use_index(ROUTE_MODULES, PREFIX_RENDERER_MODULES)

__all__ = ["Route", "load_all"]
