#!/usr/bin/env python3
"""Slipway local dev stack: single-node Kafka (KRaft), PostgreSQL 15, an OCI registry, SMTP catcher.

Usage: python3 deploy/devstack/devstack.py up|down|status|env|clean|stop <component>

The code is the package ``slipway_devstack`` beside this file, one module per subsystem
(settings, proc, tools, kafka, postgres, registry, mail, image, cli); see its ``__init__``.
Stdlib only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slipway_devstack.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
