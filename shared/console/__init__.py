"""The operator console at /console/: server-rendered pages over the operator services (see
docs/operations.md). ``routes`` registers the pages, ``app.handle`` serves them."""
