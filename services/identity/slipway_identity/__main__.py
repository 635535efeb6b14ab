"""`python -m slipway_identity migrate|api|worker|relay|run`."""

from slipway_libs.service import main

from slipway_identity.bootstrap import DEFINITION

if __name__ == "__main__":
    main(DEFINITION)
