"""The FHIR R4 view of the registry: plain-dict mappings (no FHIR library at runtime, for cold
start), the CapabilityStatement, Bundles and OperationOutcome errors. See docs/fhir.md."""
