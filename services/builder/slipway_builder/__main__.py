"""`python -m slipway_builder migrate|api|worker|relay|run`."""

from slipway_builder.bootstrap import DEFINITION
from slipway_libs.service import main

if __name__ == "__main__":
    main(DEFINITION)
