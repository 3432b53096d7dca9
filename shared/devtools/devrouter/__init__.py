"""The local eventing harness of ``make dev``: a Broker/Trigger/PingSource stand-in that reads the
production manifests under ``knative/`` (see ``router``), and the Pub/Sub emulator wiring
(``emulator``). Production uses Knative Eventing and Pub/Sub themselves."""
