"""`python3 deploy/devstack/slipway_devstack` runs the devstack's command line."""

import sys

from slipway_devstack.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
