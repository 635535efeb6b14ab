"""A cluster's API server address and credentials, read strictly from what a user gave.

Every malformed input is a 422 with a stable code and the field at fault (``details.field``):
``INVALID_API_URL``, ``INVALID_KUBECONFIG``, ``INVALID_CA_CERT``, ``INVALID_CLUSTER_TOKEN``.
A kubeconfig's booleans are YAML booleans only (the string ``"false"`` is refused, not read as
true); its CA data is strict base64 of UTF-8 PEM that loads as a certificate. Only the current
context's server, CA and bearer token are read; nothing in a kubeconfig makes the catalog read a
file or run a command.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from slipway_libs.errors import InvalidInput


@dataclass(frozen=True)
class ApiServer:
    scheme: str  # "https", or "http" (only for an allow-listed target: the use case decides)
    host: str  # lower case; an IPv6 address without brackets
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


@dataclass(frozen=True)
class ClusterAccess:
    """What connecting to a cluster needs."""

    server: ApiServer
    token: str | None = field(default=None, repr=False)
    ca_pem: str | None = None
    insecure: bool = False


def api_server(url: str, *, at: str = "api_url") -> ApiServer:
    """``http(s)://host[:port]`` with nothing else: no credentials, path, query or fragment."""

    def refuse(message: str) -> InvalidInput:
        code = "INVALID_KUBECONFIG" if at != "api_url" else "INVALID_API_URL"
        return InvalidInput(code, f"{at}: {message}", field=at)

    if not url.isprintable() or any(c.isspace() for c in url) or "\\" in url:
        raise refuse("spaces, control characters or backslashes are not allowed")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise refuse("the API server URL must be https://host[:port]")
    if "@" in parts.netloc or "%" in parts.netloc:
        raise refuse("no credentials or percent-encoding in the API server URL")
    if parts.path not in ("", "/") or "?" in url or "#" in url:
        raise refuse("no path, query or fragment in the API server URL")
    try:
        port = parts.port
    except ValueError:
        raise refuse("the port is not valid") from None
    if not parts.hostname:
        raise refuse("the API server URL has no host")
    default = 443 if parts.scheme == "https" else 80
    return ApiServer(parts.scheme, parts.hostname.rstrip("."), port or default)


def ca_certificate(pem: str, *, at: str = "ca_cert") -> str:
    code = "INVALID_CA_CERT" if at == "ca_cert" else "INVALID_KUBECONFIG"
    try:
        ssl.create_default_context().load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise InvalidInput(code, f"{at}: not a PEM certificate", field=at) from None
    return pem


def bearer_token(token: str, *, at: str = "token") -> str:
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        code = "INVALID_CLUSTER_TOKEN" if at == "token" else "INVALID_KUBECONFIG"
        raise InvalidInput(code, f"{at}: a token is printable ASCII without spaces", field=at)
    return token


# --- kubeconfig -------------------------------------------------------------------------------


def _invalid(at: str, message: str) -> InvalidInput:
    return InvalidInput(
        "INVALID_KUBECONFIG", f"kubeconfig {at}: {message}", field=f"kubeconfig.{at}"
    )


def _mapping(value: Any, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(at, "must be a mapping")
    return value


def _text(value: Any, at: str) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(at, "must be a non-empty string")
    return value


def _named(doc: dict[str, Any], kind: str, name: str) -> tuple[str, dict[str, Any]]:
    """The ``kind`` entry (``clusters``, ``contexts``, ``users``) called ``name``, with its path."""
    entries = doc.get(kind)
    if not isinstance(entries, list):
        raise _invalid(kind, "must be a list")
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("name") == name:
            inner = kind.removesuffix("s")
            return f"{kind}[{index}].{inner}", _mapping(
                entry.get(inner), f"{kind}[{index}].{inner}"
            )
    raise _invalid(kind, f"no entry named {name!r}")


def parse_kubeconfig(text: str) -> ClusterAccess:
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        raise _invalid("document", "not valid YAML") from None
    doc = _mapping(doc, "document")
    current = _text(doc.get("current-context"), "current-context")
    _, context = _named(doc, "contexts", current)
    at, cluster = _named(doc, "clusters", _text(context.get("cluster"), "context.cluster"))
    server = api_server(_text(cluster.get("server"), f"{at}.server"), at=f"kubeconfig.{at}.server")
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        raise _invalid(f"{at}.insecure-skip-tls-verify", "must be true or false, not a string")
    ca_pem = _ca_data(cluster.get("certificate-authority-data"), f"{at}.certificate-authority-data")
    return ClusterAccess(server, _token(doc, context), ca_pem, insecure)


def _ca_data(value: Any, at: str) -> str | None:
    if value is None:
        return None
    try:
        # line breaks are allowed (base64 tools wrap lines); any other non-alphabet byte is not
        compact = "".join(_text(value, at).split())
        pem = base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _invalid(at, "must be base64 of a PEM certificate") from None
    return ca_certificate(pem, at=f"kubeconfig.{at}")


def _token(doc: dict[str, Any], context: dict[str, Any]) -> str | None:
    name = context.get("user")
    if name is None:
        return None
    at, user = _named(doc, "users", _text(name, "context.user"))
    token = user.get("token")
    return (
        None
        if token is None
        else bearer_token(_text(token, f"{at}.token"), at=f"kubeconfig.{at}.token")
    )
