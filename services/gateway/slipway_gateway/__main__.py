"""`python -m slipway_gateway migrate|api|worker|relay|run`."""

import asyncio

import uvloop

from slipway_gateway.bootstrap import DEFINITION
from slipway_libs.service import main

if __name__ == "__main__":
    # every request crosses two HTTP hops here: the event loop's own cost per callback and per
    # socket read is a large part of the gateway's (bench/results/gateway.md)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    main(DEFINITION)
