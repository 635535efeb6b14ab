"""`python -m slipway_catalog migrate|api|worker|relay|run`."""

from slipway_libs.service import main

from slipway_catalog.bootstrap import DEFINITION

if __name__ == "__main__":
    main(DEFINITION)
