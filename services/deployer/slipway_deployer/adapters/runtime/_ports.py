"""Host ports for what the local runtime runs."""

from __future__ import annotations

import socket


def free_port(taken: set[int]) -> int:
    """A port free on every address now, and not already given to another workload."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("0.0.0.0", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
