"""`python -m slipway_builder migrate|api|worker|relay|run`."""

from slipway_libs.service import main

from slipway_builder.bootstrap import DEFINITION

if __name__ == "__main__":
    main(DEFINITION)
