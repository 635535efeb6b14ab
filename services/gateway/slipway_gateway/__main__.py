"""`python -m slipway_gateway migrate|api|worker|relay|run`."""

from slipway_gateway.bootstrap import DEFINITION
from slipway_libs.service import main

if __name__ == "__main__":
    main(DEFINITION)
