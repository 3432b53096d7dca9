"""Development tooling: the `make dev` runner (devrun), the embedded PostgreSQL (embedded_pg) and the
local eventing harness (devrouter). Nothing here runs in a deployed function."""
