"""`python -m slipway_deployer migrate|api|worker|relay|run`."""

from slipway_libs.service import main

from slipway_deployer.bootstrap import DEFINITION

if __name__ == "__main__":
    main(DEFINITION)
