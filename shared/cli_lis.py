"""``patient-mgt lis ...``: LIS tools. ``lis send FILE...`` feeds HL7 files to the local stack.

With the Pub/Sub emulator of `make dev` running, each file is published to the LIS topic and
arrives at lis_consumer through the push subscription, as in production. Without it, the same
push body Pub/Sub would send is posted straight to lis_consumer.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path


def _lis_send(args: argparse.Namespace) -> int:
    from shared.devrouter.emulator import LIS_TOPIC, Emulator  # noqa: PLC0415
    from shared.devrun import FUNCTIONS, read_state  # noqa: PLC0415
    from shared.settings import get_settings  # noqa: PLC0415

    state = read_state() or {}
    project = state.get("project") or get_settings().google_cloud_project
    topic = args.topic or state.get("lis_topic") or LIS_TOPIC
    emulator_host = None if args.post else (args.emulator or state.get("pubsub_emulator_host"))
    lis_url = args.lis_url or state.get("lis_consumer") or f"http://127.0.0.1:{FUNCTIONS['lis_consumer']}"
    failures = 0
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read ({exc.strerror})", file=sys.stderr)
            failures += 1
            continue
        if emulator_host:
            message_id = Emulator(emulator_host, project).publish(topic, data)
            print(f"{path.name}: published to projects/{project}/topics/{topic} as message {message_id}")
            continue
        status = _post_push_body(f"{lis_url.rstrip('/')}/projects/{project}/topics/{topic}", project, data)
        ok = 200 <= status < 300
        failures += 0 if ok else 1
        print(f"{path.name}: posted to lis_consumer: HTTP {status}" + ("" if ok else " (not accepted)"),
              file=sys.stdout if ok else sys.stderr)
    return 1 if failures else 0


def _post_push_body(url: str, project: str, data: bytes) -> int:
    """What a Pub/Sub push subscription sends (functions-framework turns it into a CloudEvent)."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message_id = str(uuid.uuid4().int % 10**16)
    body = {"message": {"data": base64.b64encode(data).decode("ascii"), "attributes": {}, "messageId": message_id,
                        "message_id": message_id, "publishTime": now, "publish_time": now},
            "subscription": f"projects/{project}/subscriptions/lis-send"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 (local dev URL)
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except OSError:
        print("lis_consumer is not answering: is `make dev` running?", file=sys.stderr)
        return 0


def register(sub: argparse._SubParsersAction) -> None:
    lis = sub.add_parser("lis", help="LIS tools").add_subparsers(dest="lis_command", required=True)
    send = lis.add_parser("send", help="feed HL7 files to the local stack (Pub/Sub emulator, or straight to lis_consumer)")
    send.add_argument("files", nargs="+", type=Path, metavar="FILE")
    send.add_argument("--topic", help="LIS topic (default lis-inbound)")
    send.add_argument("--emulator", metavar="HOST:PORT", help="Pub/Sub emulator (default: the one `make dev` started)")
    send.add_argument("--post", action="store_true", help="post push bodies to lis_consumer even when the emulator runs")
    send.add_argument("--lis-url", help="lis_consumer base URL for --post (default: the one `make dev` started)")
    send.set_defaults(func=_lis_send)
