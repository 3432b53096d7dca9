"""Metrics and traces: the seed's monitoring priorities, in OpenTelemetry's shape.

- ``tracecontext`` — W3C trace context (``traceparent``/``tracestate``) without OpenTelemetry:
  parsing, the current context of a request or delivery, the values stored on outbox rows.
- ``setup`` — builds the MeterProvider/TracerProvider from ``OTEL_*`` settings, lazily, at the first
  request or delivery of a process; with no exporter configured nothing of OpenTelemetry is imported.
- ``instruments`` — every instrument of the project (names, units, bounded attributes); each is a
  no-op attribute check until ``setup`` binds it.
- ``spans`` — the server span of an api request and the consumer span of a CloudEvent delivery;
  their ids are the ones log lines carry (``logging.googleapis.com/trace``).
- ``queues`` — queue depths read from PostgreSQL (observable gauges).
- ``prometheus`` — the Prometheus text served at ``GET /metrics``.
- ``registrations``, ``lis`` — recording helpers for the registry route and the LIS ingest.

Nothing here carries patient data: attributes are route templates, status classes, event types,
outcome codes, channels and job names — each from a bounded set (``labels``).
"""
