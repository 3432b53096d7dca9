"""``patient-mgt lis ...``: LIS tools. ``lis send FILE...`` feeds HL7 files to the local stack.

With the Pub/Sub emulator of `make dev` running, each file is published to the LIS topic and
arrives at lis_consumer through the push subscription, as in production. Without it, the same
push body Pub/Sub would send is posted straight to lis_consumer. With ``--mllp`` each message of
each file is sent as a LIS would, over MLLP to the adapter (python-hl7's client), and its ACK shown.
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
    if args.mllp is not None:
        return _lis_send_mllp(args)
    from shared.devtools.devrouter.emulator import LIS_TOPIC, Emulator  # noqa: PLC0415
    from shared.devtools.devrun import FUNCTIONS, read_state  # noqa: PLC0415
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


def _lis_send_mllp(args: argparse.Namespace) -> int:
    from hl7.client import MLLPClient  # noqa: PLC0415

    from shared.devtools.devrun import MLLP_PORT, read_state  # noqa: PLC0415
    from shared.hl7 import HL7Error, split_messages  # noqa: PLC0415

    address = args.mllp or (read_state() or {}).get("mllp") or f"127.0.0.1:{MLLP_PORT}"
    host, _, port = address.rpartition(":")
    failures = 0
    try:
        client = MLLPClient(host or "127.0.0.1", int(port))
    except (OSError, ValueError):
        print(f"the MLLP adapter is not answering at {address}: is `make dev` running?", file=sys.stderr)
        return 1
    with client:
        for path in args.files:
            try:
                messages = split_messages(path.read_bytes())
            except OSError as exc:
                print(f"{path}: cannot read ({exc.strerror})", file=sys.stderr)
                failures += 1
                continue
            except HL7Error:
                messages = []
            if not messages:
                print(f"{path}: holds no HL7 message", file=sys.stderr)
                failures += 1
                continue
            for index, message in enumerate(messages, 1):
                label = path.name if len(messages) == 1 else f"{path.name}#{index}"
                try:
                    code = _ack_code(client.send_message(message))
                except OSError:
                    code = "no ACK (connection lost)"
                ok = code == "AA"
                failures += 0 if ok else 1
                print(f"{label}: sent over MLLP to {address}: {code}", file=sys.stdout if ok else sys.stderr)
    return 1 if failures else 0


def _ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK (with the ERR text when there is one)."""
    segments = [line.split(b"|") for line in ack.strip(b"\x0b\x1c\r\n").split(b"\r")]
    msa = next((seg for seg in segments if seg[0] == b"MSA" and len(seg) > 1), None)
    if msa is None:
        return "no ACK"
    err = next((seg for seg in segments if seg[0] == b"ERR" and len(seg) > 3), None)
    detail = f" ({err[3].decode('ascii', 'replace')})" if err else ""
    return msa[1].decode("ascii", "replace") + detail


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


def _lis_schema(args: argparse.Namespace) -> int:
    """Write the JSON Schema of the JSON LIS event (generated from shared/lis/json_event.py)."""
    from shared.lis.json_event import schema_text  # noqa: PLC0415
    from shared.settings import PROJECT_ROOT  # noqa: PLC0415

    text = schema_text()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    target = PROJECT_ROOT / "docs" / "lis-event.schema.json"
    target.write_text(text)
    print(f"wrote {target}")
    return 0


def _lis_replay(args: argparse.Namespace) -> int:
    """Re-run failed or quarantined LIS messages by id (as POST /lis/messages/{id}/replay)."""
    from shared.auth import SYSTEM_CLI  # noqa: PLC0415
    from shared.lis import operator  # noqa: PLC0415

    for message_id in args.ids:
        outcome, replayed = operator.replay(SYSTEM_CLI, message_id)
        if replayed and outcome is not None:
            print(f"{message_id}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
        else:
            print(f"{message_id}: not failed or quarantined; nothing to do")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    lis = sub.add_parser("lis", help="LIS tools").add_subparsers(dest="lis_command", required=True)
    send = lis.add_parser("send", help="feed HL7 files to the local stack (Pub/Sub emulator, or straight to lis_consumer)")
    send.add_argument("files", nargs="+", type=Path, metavar="FILE")
    send.add_argument("--topic", help="LIS topic (default lis-inbound)")
    send.add_argument("--emulator", metavar="HOST:PORT", help="Pub/Sub emulator (default: the one `make dev` started)")
    send.add_argument("--post", action="store_true", help="post push bodies to lis_consumer even when the emulator runs")
    send.add_argument("--lis-url", help="lis_consumer base URL for --post (default: the one `make dev` started)")
    send.add_argument("--mllp", nargs="?", const="", metavar="HOST:PORT",
                      help="send each message over MLLP to the adapter (default: the one `make dev` started, 127.0.0.1:2575)")
    send.set_defaults(func=_lis_send)
    schema = lis.add_parser("schema", help="write docs/lis-event.schema.json from the JSON LIS event model")
    schema.add_argument("--stdout", action="store_true", help="print it instead")
    schema.set_defaults(func=_lis_schema)
    replay = lis.add_parser("replay", help="re-run failed or quarantined LIS messages from their stored bytes")
    replay.add_argument("ids", nargs="+", type=uuid.UUID, metavar="MESSAGE_ID")
    replay.set_defaults(func=_lis_replay)
