"""The real Pub/Sub emulator for ``make dev`` and the tests: find it, start it, wire the LIS topics.

Wiring (as ``knative/gcp/pubsub.yaml`` declares for production):
- topic ``lis-inbound`` with a push subscription to lis_consumer whose URL carries
  ``/projects/<P>/topics/lis-inbound`` (functions-framework puts it in the CloudEvent source);
- topic ``lis-inbound-dead-letter``: after ``max_delivery_attempts`` failed pushes a message moves
  there, and a push subscription hands it to the jobs function's ``/dead-letter`` path, which
  stores it for re-drive.
The emulator (checked with the one on these machines) stops pushing altogether when an *ordered*
subscription dead-letters a message (a NullPointerException in its push loop), so the local
subscription does not enable message ordering; production's does. It is configured through the
emulator's REST API, so this module does not import google-cloud-pubsub.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

EMULATOR_BINARY = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
LIS_TOPIC = "lis-inbound"
LIS_DEAD_LETTER_TOPIC = "lis-inbound-dead-letter"
LIS_SUBSCRIPTION = "lis-inbound-lis-consumer"
LIS_DEAD_LETTER_SUBSCRIPTION = "lis-inbound-dead-letter-jobs"
LIS_OUTBOUND_TOPIC = "lis-outbound"
LIS_OUTBOUND_SUBSCRIPTION = "lis-outbound-mllp"
LIS_OUTBOUND_DEAD_LETTER_SUBSCRIPTION = "lis-outbound-dead-letter-hold"


def emulator_command(host: str, port: int) -> list[str] | None:
    """How to start the emulator here, or None when it is not installed."""
    if EMULATOR_BINARY.exists():
        return [str(EMULATOR_BINARY), f"--host={host}", f"--port={port}"]
    gcloud = shutil.which("gcloud")
    if gcloud:
        sdk_root = Path(gcloud).resolve().parent.parent
        if (sdk_root / "platform" / "pubsub-emulator").exists():
            return [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port={host}:{port}"]
    return None


def start(host: str, port: int, log_path: Path, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """Start the emulator in its own process group and wait until it answers."""
    command = emulator_command(host, port)
    if command is None:
        raise FileNotFoundError("the Pub/Sub emulator is not installed")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Pub/Sub emulator exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"the Pub/Sub emulator did not answer within {timeout:.0f} s; see {log_path}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@dataclass(frozen=True)
class Emulator:
    """The emulator's REST API (the same port serves gRPC for the client libraries)."""

    host: str  # "127.0.0.1:8085", the PUBSUB_EMULATOR_HOST value
    project: str

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(f"http://{self.host}/v1/{path}", data=json.dumps(body or {}).encode(), method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 409 and method == "PUT":  # already exists (a second run against the same emulator)
                return {}
            raise RuntimeError(f"Pub/Sub emulator {method} {path}: HTTP {exc.code}") from None

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def create_topic(self, topic: str) -> None:
        self._call("PUT", self.topic_path(topic))

    def create_push_subscription(self, name: str, topic: str, endpoint: str, *, dead_letter_topic: str | None = None,
                                 max_delivery_attempts: int = 5, minimum_backoff: str = "1s", maximum_backoff: str = "10s") -> None:
        body: dict = {"topic": self.topic_path(topic), "ackDeadlineSeconds": 60, "pushConfig": {"pushEndpoint": endpoint},
                      "retryPolicy": {"minimumBackoff": minimum_backoff, "maximumBackoff": maximum_backoff}}
        if dead_letter_topic:
            body["deadLetterPolicy"] = {"deadLetterTopic": self.topic_path(dead_letter_topic), "maxDeliveryAttempts": max_delivery_attempts}
        self._call("PUT", f"projects/{self.project}/subscriptions/{name}", body)

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None, ordering_key: str = "") -> str:
        message: dict = {"data": base64.b64encode(data).decode("ascii")}
        if attributes:
            message["attributes"] = attributes
        if ordering_key:
            message["orderingKey"] = ordering_key
        return self._call("POST", f"{self.topic_path(topic)}:publish", {"messages": [message]})["messageIds"][0]

    def wire_lis(self, lis_consumer_url: str, jobs_url: str, *, max_delivery_attempts: int = 5) -> None:
        """The LIS topics and their push subscriptions (see the module docstring)."""
        self.create_topic(LIS_TOPIC)
        self.create_topic(LIS_DEAD_LETTER_TOPIC)
        self.create_push_subscription(
            LIS_SUBSCRIPTION, LIS_TOPIC, f"{lis_consumer_url.rstrip('/')}/{self.topic_path(LIS_TOPIC)}",
            dead_letter_topic=LIS_DEAD_LETTER_TOPIC, max_delivery_attempts=max_delivery_attempts)
        self.create_push_subscription(
            LIS_DEAD_LETTER_SUBSCRIPTION, LIS_DEAD_LETTER_TOPIC,
            f"{jobs_url.rstrip('/')}/dead-letter/{self.topic_path(LIS_DEAD_LETTER_TOPIC)}")

    def wire_lis_outbound(self, *, max_delivery_attempts: int = 5) -> None:
        """Orders out: topic ``lis-outbound`` (jobs publishes), pulled by the MLLP adapter through
        ``lis-outbound-mllp``; what the LIS never accepts goes to ``lis-outbound-dead-letter``, whose pull
        subscription ``lis-outbound-dead-letter-hold`` the adapter drains into `dead_letters` (listed by
        GET /events/dead-letters), as in production (shared/mllp/dead_letters.py)."""
        dead = f"{LIS_OUTBOUND_TOPIC}-dead-letter"
        self.create_topic(LIS_OUTBOUND_TOPIC)
        self.create_topic(dead)
        self._call("PUT", f"projects/{self.project}/subscriptions/{LIS_OUTBOUND_SUBSCRIPTION}", {
            "topic": self.topic_path(LIS_OUTBOUND_TOPIC), "ackDeadlineSeconds": 600,
            "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "10s"},
            "deadLetterPolicy": {"deadLetterTopic": self.topic_path(dead), "maxDeliveryAttempts": max_delivery_attempts}})
        self._call("PUT", f"projects/{self.project}/subscriptions/{LIS_OUTBOUND_DEAD_LETTER_SUBSCRIPTION}",
                   {"topic": self.topic_path(dead), "ackDeadlineSeconds": 60})
