"""A private git forge for tests: ``git http-backend`` behind a small https server on 127.0.0.1
that answers 401 unless the request carries basic auth with the expected token (any user name,
as GitHub, GitLab and Gitea accept tokens). It serves the bare repositories under ``root``.

Real git on both ends: the client speaks smart HTTP to the real ``git http-backend`` CGI. The
certificate is self-signed for 127.0.0.1; point git at it with ``GIT_SSL_CAINFO``.
"""

from __future__ import annotations

import base64
import hmac
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from slipway_libs.testing.certificates import self_signed

_BACKEND_TIMEOUT_S = 60


@dataclass
class PrivateForge:
    root: Path  # bare repositories: <root>/<name>.git
    token: str = field(repr=False)
    ca_file: Path
    port: int = 0
    refused: list[str] = field(default_factory=list)  # paths answered 401
    served: list[str] = field(default_factory=list)  # paths served with the right token

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"https://{self.address}/{name}.git"

    def head(self, name: str) -> str:
        """The commit the served repository ``name`` has at HEAD."""
        return git(self.root / f"{name}.git", "rev-parse", "HEAD")


def git(cwd: Path, *args: str) -> str:
    """Run ``git`` in ``cwd`` as a test's author, apart from the machine's and the user's git
    configuration (which could sign, hook or rewrite URLs); its output, stripped."""
    env = {"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    done = subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return done.stdout.decode().strip()


def _handler(forge: PrivateForge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _authorized(self) -> bool:
            scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                _, _, password = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                return False
            return hmac.compare_digest(password.encode(), forge.token.encode())

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            if not self._authorized():
                forge.refused.append(path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="private forge"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            forge.served.append(path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            self._answer(self._backend(path, query, body))

        def _backend(self, path: str, query: str, body: bytes) -> bytes:
            env = {
                "PATH": os.environ.get("PATH", os.defpath),
                "GIT_PROJECT_ROOT": str(forge.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type") or "",
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding") or "",
                "GIT_PROTOCOL": self.headers.get("Git-Protocol") or "",
                "REMOTE_USER": "token",
                "REMOTE_ADDR": self.client_address[0],
            }
            done = subprocess.run(
                ["git", "http-backend"],
                input=body,
                env=env,
                capture_output=True,
                timeout=_BACKEND_TIMEOUT_S,
                check=False,
            )
            return done.stdout

        def _answer(self, cgi: bytes) -> None:
            head, _, payload = cgi.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextmanager
def private_forge(root: Path, token: str, directory: Path) -> Iterator[PrivateForge]:
    """Serve ``root``'s bare repositories over https on 127.0.0.1 (a free port) until exit."""
    cert, key = self_signed("127.0.0.1").write(directory, "forge")
    forge = PrivateForge(root=root, token=token, ca_file=cert)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(forge))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    forge.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="private-forge", daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def publish_bare(work: Path, root: Path, name: str) -> Path:
    """A bare copy of the work repository ``work`` at ``<root>/<name>.git``, served by the forge."""
    bare = root / f"{name}.git"
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", "--", str(work), str(bare)],
        check=True,
        capture_output=True,
    )
    return bare


def committed(work: Path, files: Mapping[str, str], message: str) -> Path:
    """A new work repository at ``work`` whose branch ``main`` has ``files`` (a path relative to
    the repository: its text) in one commit."""
    work.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        (work / relative).parent.mkdir(parents=True, exist_ok=True)
        (work / relative).write_text(text)
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", message)
    return work


@contextmanager
def one_private_repository(
    directory: Path, token: str, name: str, files: Mapping[str, str], message: str = "private"
) -> Iterator[PrivateForge]:
    """A private forge (under ``directory``) serving one repository ``name`` whose one commit
    holds ``files``; clients need ``token``, and ``GIT_SSL_CAINFO`` set to the forge's
    ``ca_file``."""
    root = directory / "forge"
    root.mkdir()
    publish_bare(committed(directory / "work-repo", files, message), root, name)
    with private_forge(root, token, directory) as served:
        yield served
