"""A local SMTP catcher: accepts every message and writes it to a directory instead of delivering
it, so that invitation mails of a development platform can be read (and tests can follow their
links). Stdlib only; listens on 127.0.0.1; no authentication, no relaying, no TLS.

Usage: python3 deploy/devstack/mailcatcher.py --port 15025 --dir .devstack/mail

Each message becomes ``<dir>/<UTC time>-<random>.eml`` (the message as received, preceded by an
``X-Slipway-Envelope-To`` header), readable only by its owner (invitation links are credentials),
written to a temporary name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
from datetime import UTC, datetime
from pathlib import Path

HOST = "127.0.0.1"
NAME = b"slipway-mailcatcher"
MAX_MESSAGE = 10 * 1024 * 1024
MAX_RECIPIENTS = 100


class Session:
    """One SMTP conversation (RFC 5321, the subset clients such as smtplib use)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, directory: Path
    ) -> None:
        self.reader, self.writer, self.directory = reader, writer, directory
        self.sender: str | None = None
        self.recipients: list[str] = []

    async def reply(self, text: bytes) -> None:
        self.writer.write(text + b"\r\n")
        await self.writer.drain()

    async def run(self) -> None:
        await self.reply(b"220 " + NAME + b" ESMTP")
        while line := await self.reader.readline():
            verb, _, argument = line.decode("utf-8", "replace").strip().partition(" ")
            if not await self.command(verb.upper(), argument):
                return

    async def command(self, verb: str, argument: str) -> bool:
        """Answer one command; False ends the session."""
        if verb == "EHLO":
            await self.reply(b"250-" + NAME + b"\r\n250-8BITMIME\r\n250 SMTPUTF8")
        elif verb == "HELO" or verb == "NOOP":
            await self.reply(b"250 " + NAME)
        elif verb == "MAIL":
            self.sender, self.recipients = _path(argument), []
            await self.reply(b"250 OK")
        elif verb == "RCPT" and self.sender is not None and len(self.recipients) < MAX_RECIPIENTS:
            self.recipients.append(_path(argument))
            await self.reply(b"250 OK")
        elif verb == "DATA" and self.recipients:
            await self.reply(b"354 End data with <CR><LF>.<CR><LF>")
            await self.reply(await self.data())
        elif verb == "RSET":
            self.sender, self.recipients = None, []
            await self.reply(b"250 OK")
        elif verb == "QUIT":
            await self.reply(b"221 Bye")
            return False
        else:
            await self.reply(b"503 Bad sequence of commands or not supported")
        return True

    async def data(self) -> bytes:
        lines: list[bytes] = []
        size = 0
        while (line := await self.reader.readline()) not in (b".\r\n", b".\n", b""):
            size += len(line)
            if size <= MAX_MESSAGE:
                lines.append(line[1:] if line.startswith(b".") else line)  # dot-unstuffing
        self.sender, recipients, self.recipients = None, self.recipients, []
        if size > MAX_MESSAGE:
            return b"552 Message too large"
        self.save(recipients, b"".join(lines))
        return b"250 OK: caught"

    def save(self, recipients: list[str], message: bytes) -> None:
        envelope = f"X-Slipway-Envelope-To: {', '.join(recipients)}\r\n".encode()
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%f}-{secrets.token_hex(4)}.eml"
        partial = self.directory / f".{name}.partial"
        partial.touch(mode=0o600)
        partial.write_bytes(envelope + message)
        partial.rename(self.directory / name)


def _path(argument: str) -> str:
    """``FROM:<a@b> SIZE=1`` -> ``a@b``."""
    _, _, rest = argument.partition(":")
    return rest.strip().split(" ")[0].strip("<>")


async def serve(port: int, directory: Path) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await Session(reader, writer, directory).run()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass  # a client that went away or sent a line too long: nothing was caught
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"mailcatcher on {HOST}:{port}, writing to {directory}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=15025)
    parser.add_argument("--dir", type=Path, required=True)
    options = parser.parse_args()
    options.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(options.port, options.dir))


if __name__ == "__main__":
    main()
