"""One gateway process for ``bench/gateway_authz.py``, with the policy decision on or bypassed.

    .venv/bin/python bench/gateway_server.py --port 18080 --authorize on|off

The gateway is built by the shipped composition root, not by a copy of it: the container comes
from ``slipway_libs.service.open_container(DEFINITION)`` (same settings, logging and tracer
provider), the ``Gateway`` from ``slipway_gateway.bootstrap`` (its ``AccessProjection``,
``Upstreams``, ``TokenUsage``), and ``slipway_libs.service.serve_api`` serves it with uvicorn
beside the bootstrap's API tasks (the projection follower, token-usage flush, session pruning),
exactly as ``python -m slipway_gateway api`` does. So the benchmark follows the gateway when its
composition changes.

Settings come from the environment the platform helper passes (``SLIPWAY_TOPIC_PREFIX``,
``SLIPWAY_INTERNAL_TOKEN``, ``SLIPWAY_GATEWAY_IDENTITY_URL``, ``SLIPWAY_KAFKA_BOOTSTRAP_SERVERS``,
``SLIPWAY_GATEWAY_SERVICES``). The one difference from the shipped process is
``Gateway.authorize``: ``--authorize on|off`` sets it at start, and ``SIGUSR1`` flips it, so that
the benchmark can swap the roles of its two gateway processes between rounds (a process's own
speed then weighs on both variants alike). The bypass lives in this benchmark process only,
there is no setting for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import uvloop

from slipway_gateway.bootstrap import DEFINITION
from slipway_libs.service import open_container, serve_api


async def serve(port: int, authorize: bool) -> None:
    os.environ["SLIPWAY_GATEWAY_HTTP_PORT"] = str(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_container(DEFINITION) as container:
        gateway = container.parts.gateway  # the one the routers and tasks below use
        gateway.authorize = authorize

        def flip() -> None:
            gateway.authorize = not gateway.authorize

        loop.add_signal_handler(signal.SIGUSR1, flip)
        await serve_api(container, stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--authorize", choices=("on", "off"), required=True)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # as `python -m slipway_gateway`
    asyncio.run(serve(args.port, args.authorize == "on"))


if __name__ == "__main__":
    main()
