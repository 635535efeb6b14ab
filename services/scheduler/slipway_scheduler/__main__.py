"""`python -m slipway_scheduler migrate|api|worker|relay|run`."""

from slipway_libs.service import main
from slipway_scheduler.bootstrap import DEFINITION

if __name__ == "__main__":
    main(DEFINITION)
