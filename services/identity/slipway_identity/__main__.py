"""`python -m slipway_identity migrate|api|worker|relay|run`."""

from slipway_identity.bootstrap import DEFINITION
from slipway_libs.service import main

if __name__ == "__main__":
    main(DEFINITION)
