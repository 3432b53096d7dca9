"""The MLLP adapter (`patient-mgt mllp`): HL7 v2 over TCP in, Pub/Sub out (docs/lis.md §9).

`frames` cuts the byte stream into MLLP frames, `ack` reads a message's MSH and writes the ACK,
`publish` hands messages to Pub/Sub and waits for its confirmation, `server` is the asyncio
listener that ties them together (limits, TLS, allowlist).
"""
