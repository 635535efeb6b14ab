"""`python -m slipway_logs migrate|api|worker|relay|run`."""

from slipway_libs.service import main
from slipway_logs.bootstrap import DEFINITION

if __name__ == "__main__":
    main(DEFINITION)
