"""`python -m slipway_identity migrate|api|worker|relay|run`."""

import asyncio

import uvloop

from slipway_identity.bootstrap import DEFINITION
from slipway_libs.service import main

if __name__ == "__main__":
    # every public request is authorized by reading identity's projection or identity itself:
    # its event loop's cost per request counts (bench/results/gateway.md)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    main(DEFINITION)
