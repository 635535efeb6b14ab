"""``python -m slipway_contracts write``: refresh the JSON Schema snapshots and the AsyncAPI file.

Run it after an additive change to a payload; the contract tests fail until you do, and they
fail regardless on a breaking change.
"""

import sys

from slipway_contracts import asyncapi, schemas


def main(argv: list[str]) -> int:
    if argv[1:] != ["write"]:
        sys.stderr.write("usage: python -m slipway_contracts write\n")
        return 2
    schemas.write_snapshots()
    asyncapi.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
