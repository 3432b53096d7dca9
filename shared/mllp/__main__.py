"""``python -m shared.mllp`` / ``patient-mgt mllp``: run the listener until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys


async def serve() -> int:
    from shared.settings import get_settings  # noqa: PLC0415

    from .publish import PubSubPublisher, topic_path  # noqa: PLC0415
    from .server import Limits, MllpServer, parse_networks, tls_context  # noqa: PLC0415

    settings = get_settings()
    tls = None
    if settings.mllp_tls_cert_file:
        tls = tls_context(str(settings.mllp_tls_cert_file), str(settings.mllp_tls_key_file or "") or None,
                          str(settings.mllp_tls_client_ca_file) if settings.mllp_tls_client_ca_file else None)
    limits = Limits(max_frame_bytes=settings.mllp_max_frame_bytes, idle_timeout=settings.mllp_idle_timeout_seconds,
                    publish_timeout=settings.mllp_publish_timeout_seconds, max_connections=settings.mllp_max_connections)
    publisher = PubSubPublisher(topic_path(settings.mllp_topic, settings.google_cloud_project))
    server = MllpServer(publisher, limits, parse_networks(settings.mllp_allowed_networks), tls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start(settings.mllp_host, settings.mllp_port)
    relay = _outbound_relay(settings, loop)
    drain = _dead_letter_drain(settings)
    try:
        await stop.wait()
    finally:
        for subscriber in (relay, drain):
            if subscriber is not None:
                await asyncio.to_thread(subscriber.stop)
        await server.close()
    return 0


def _outbound_relay(settings, loop: asyncio.AbstractEventLoop):  # noqa: ANN001, ANN202
    """Messages for the LIS (LIS_MLLP_HOST set), sent over MLLP; None when there is no LIS to send to."""
    if not settings.lis_mllp_host:
        return None
    from .order_status import record_outcome  # noqa: PLC0415
    from .outbound import OutboundRelay  # noqa: PLC0415
    from .sender import send_once  # noqa: PLC0415

    subscription = _subscription_path(settings.lis_outbound_subscription, settings.google_cloud_project)
    host, port, timeout = settings.lis_mllp_host, settings.lis_mllp_port, settings.lis_ack_timeout_seconds
    relay = OutboundRelay(subscription, lambda data: send_once(host, port, data, ack_timeout=timeout),
                          attempts=settings.lis_outbound_attempts, backoff=settings.lis_outbound_backoff_seconds, loop=loop,
                          on_outcome=record_outcome if settings.database_url else None)
    relay.start()
    return relay


def _dead_letter_drain(settings):  # noqa: ANN001, ANN202
    """Messages the LIS never accepted, into `dead_letters` (shared/mllp/dead_letters.py); None when not configured."""
    if not (settings.lis_outbound_dead_letter_subscription and settings.lis_outbound_topic and settings.database_url):
        return None
    from .dead_letters import DeadLetterDrain  # noqa: PLC0415
    from .publish import topic_path  # noqa: PLC0415

    drain = DeadLetterDrain(
        _subscription_path(settings.lis_outbound_dead_letter_subscription, settings.google_cloud_project),
        topic_path(settings.lis_outbound_topic, settings.google_cloud_project) + "-dead-letter")
    drain.start()
    return drain


def _subscription_path(subscription: str, project: str) -> str:
    return subscription if subscription.startswith("projects/") else f"projects/{project}/subscriptions/{subscription}"


def main() -> int:
    return asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
