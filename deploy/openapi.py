"""Writes ``contracts/openapi.json``, the public API's document (``make openapi``).

The gateway imports no service, so its document is assembled here, at build time: each
service's own document (``openapi_fragment()``, from the models its routes declare) and the
gateway's route table (``slipway_gateway.api.openapi.assemble``). ``--check`` writes nothing
and fails when the committed document is not the one the code produces.
"""

from __future__ import annotations

import sys
from typing import Any

from slipway_catalog.api.openapi import openapi_fragment as catalog
from slipway_contracts.openapi import DOCUMENT_PATH
from slipway_deployer.api.openapi import openapi_fragment as deployer
from slipway_gateway.api.openapi import assemble, render
from slipway_identity.api.openapi import openapi_fragment as identity
from slipway_logs.api.openapi import openapi_fragment as logs
from slipway_scheduler.api.openapi import openapi_fragment as scheduler


def fragments() -> dict[str, dict[str, Any]]:
    return {
        "identity": identity(),
        "catalog": catalog(),
        "deployer": deployer(),
        "scheduler": scheduler(),
        "logs": logs(),
    }


def document() -> dict[str, Any]:
    return assemble(fragments())


def main(argv: list[str]) -> int:
    text = render(document())
    if "--check" in argv:
        if DOCUMENT_PATH.read_text() != text:
            print(f"{DOCUMENT_PATH} is stale: run `make openapi` and commit it")
            return 1
        return 0
    DOCUMENT_PATH.write_text(text)
    print(f"wrote {DOCUMENT_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
