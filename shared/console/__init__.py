"""The operator console at /console/: server-rendered pages over the operator services (see
docs/operations.md). ``routes`` registers the pages, ``app.handle`` serves them."""

# Here, not in ``web``: the api function routes on it without importing the console.
PREFIX = "/console"
