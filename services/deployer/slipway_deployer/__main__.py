"""`python -m slipway_deployer migrate|api|worker|relay|run`."""

from slipway_deployer.bootstrap import DEFINITION
from slipway_libs.service import main

if __name__ == "__main__":
    main(DEFINITION)
