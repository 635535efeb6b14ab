"""`python -m slipway_catalog migrate|api|worker|relay|run`."""

from slipway_catalog.bootstrap import DEFINITION
from slipway_libs.service import main

if __name__ == "__main__":
    main(DEFINITION)
