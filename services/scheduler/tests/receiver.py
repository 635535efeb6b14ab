"""A real HTTP receiver of webhook deliveries for the tests, on 127.0.0.1 in a thread of the
test process: each path answers its scripted status codes in turn (then 200) and every request
is kept (path, headers, body)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[int]] = {}
        self._received: list[Received] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *codes: int) -> None:
        """``path`` answers these codes to its next requests, then 200."""
        with self._lock:
            self._scripts[path] = list(codes)

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self._received if r.path == path]

    async def wait_for(self, path: str, count: int, timeout_s: float) -> list[Received]:
        """The first ``count`` requests to ``path``; fails when they do not come in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.received(path)
            if len(got) >= count:
                return got
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"{count} request(s) to {path} not received within {timeout_s}s "
            f"(got {len(self.received(path))})"
        )

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _next_code(self, path: str) -> int:
        with self._lock:
            script = self._scripts.get(path, [])
            return script.pop(0) if script else 200

    def _keep(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                code = receiver._next_code(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._keep(Received(self.path, headers, body, code))
                answer = b'{"ok": true}' if code < 300 else b"receiver down"
                self.send_response(code)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:  # quiet: pytest shows what failed
                return

        return Handler
