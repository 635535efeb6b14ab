"""A scheduler timer loop alone in a process of its own (the system clock): ``python
timer_process.py <dsn> <batch size>``. The two-process test starts two and kills one."""

from __future__ import annotations

import asyncio
import sys

from slipway_libs import db
from slipway_scheduler.adapters.clock import SystemClock
from slipway_scheduler.worker import TimerLoop


async def main(dsn: str, batch_size: int) -> None:
    pool = await db.create_pool(dsn, max_size=2)
    await TimerLoop(pool, dsn, SystemClock(), batch_size=batch_size, poll_s=0.5).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
