"""CloudEvents this project emits and consumes: the catalog (types and payload models) and the outbox."""
