"""`make dev`'s stack for end-to-end tests, on ports chosen free."""

from __future__ import annotations

from collections.abc import Callable

from shared.devtools.devrun import DevStack, PortsInUse, StackConfig


def start_on_free_ports(database_url: str, config: Callable[[], StackConfig], attempts: int = 3) -> DevStack:
    """A started stack on the ports ``config()`` chooses. A port is free when chosen, not when bound:
    another process (another worker's stack) may take it first, and the stack then refuses to start
    (``PortsInUse``, having stopped what it started): the ports are chosen again, ``attempts`` times in all."""
    for _ in range(attempts - 1):
        stack = DevStack(config(), database_url)
        try:
            stack.start()
        except PortsInUse:
            continue
        return stack
    stack = DevStack(config(), database_url)
    stack.start()  # the last attempt's PortsInUse is the caller's
    return stack
