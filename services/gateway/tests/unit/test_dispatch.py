"""The table dispatch picks, for every request, the route FastAPI's router would have picked."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import compile_path

from slipway_gateway.api.dispatch import RouteIndex, TableDispatch
from slipway_gateway.api.routes import PREFIX
from slipway_gateway.api.table import ROUTES, RouteSpec
from slipway_libs.errors import BusinessError

ID = str(uuid.UUID(int=7))


COMPILED = [(spec, *compile_path(f"{PREFIX}{spec.path}")) for spec in ROUTES]


def starlette_choice(method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
    """What Starlette's router does: the first route of the table, in order, whose path regex
    matches in full and whose method is the request's."""
    for spec, regex, _, convertors in COMPILED:
        found = regex.match(path)
        if found and spec.method == method:
            return spec, {k: convertors[k].convert(v) for k, v in found.groupdict().items()}
    return None


def sample_paths() -> list[str]:
    """Each route's path with ids, with every literal another route has at that place (``me``,
    ``check``, ``resolved``...), with a `..`, an empty segment, a trailing slash, an extra
    segment: where routes could shadow each other, and where nothing should match."""
    literals: dict[int, set[str]] = {}
    templates = [f"{PREFIX}{spec.path}".split("/") for spec in ROUTES]
    for segments in templates:
        for i, segment in enumerate(segments):
            if not segment.startswith("{"):
                literals.setdefault(i, set()).add(segment)
    paths: set[str] = set()
    for segments in templates:
        choices = [
            [s] if not s.startswith("{") else [ID, "..", "", *sorted(literals.get(i, ()))]
            for i, s in enumerate(segments)
        ]
        for combination in itertools.islice(itertools.product(*choices), 400):
            path = "/".join(combination)
            paths.update({path, f"{path}/", f"{path}/x", path.replace("/api/v1", "/api/v2")})
    return sorted(paths)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
def test_the_index_picks_what_starlette_picks(method: str) -> None:
    index = RouteIndex(ROUTES, PREFIX)
    paths = sample_paths()
    assert len(paths) > 500  # the sample covers the table, not a handful
    matched = 0
    for path in paths:
        ours = index.match(method, path)
        theirs = starlette_choice(method, path)
        assert ours == theirs, path
        matched += ours is not None
    assert matched > 0 or method == "HEAD"


def test_the_first_route_of_the_table_wins_as_in_starlette() -> None:
    """Today's table has no two routes one path could match; a later one must not change
    which route answers (Starlette tries them in order)."""
    by_id = RouteSpec("GET", "/users/{user}", "identity", "/internal/v1/users/{user}", "A user")
    me = RouteSpec("GET", "/users/me", "identity", "/internal/v1/me", "Me")
    assert RouteIndex([by_id, me], PREFIX).match("GET", f"{PREFIX}/users/me") == (
        by_id,
        {"user": "me"},
    )
    assert RouteIndex([me, by_id], PREFIX).match("GET", f"{PREFIX}/users/me") == (me, {})


def test_a_converter_in_a_route_is_refused_at_start() -> None:
    spec = RouteSpec("GET", "/files/{rest:path}", "catalog", "/internal/v1/files", "Files")
    with pytest.raises(ValueError, match="whole-segment"):
        RouteIndex([spec], PREFIX)
    two = RouteSpec("GET", "/files/{a}-{b}", "catalog", "/internal/v1/files", "Files")
    with pytest.raises(ValueError, match="whole-segment"):
        RouteIndex([two], PREFIX)


def test_a_path_with_a_newline_is_left_to_the_router() -> None:
    """Starlette's ``$`` matches before a final newline: it picks a literal route for its path
    and a newline, where a segment comparison would not (and a parameter route after it would)."""
    literal = next(spec for spec in ROUTES if "{" not in spec.path and spec.method == "GET")
    path = f"{PREFIX}{literal.path}\n"
    assert starlette_choice("GET", path) == (literal, {})
    assert RouteIndex(ROUTES, PREFIX).match("GET", path) is None


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[RouteSpec, dict[str, Any]]] = []
        self.fail = fail

    async def handle(self, spec: RouteSpec, request: Request) -> Response:
        self.calls.append((spec, dict(request.path_params)))
        if self.fail is not None:
            raise self.fail
        return JSONResponse({"route": spec.path})


async def call(app: Any, method: str, path: str, kind: str = "http") -> tuple[int, bytes, str]:
    scope = {"type": kind, "method": method, "path": path, "headers": [], "query_string": b""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, scope.get("behind", "")


async def behind(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app behind the dispatch (FastAPI's router in the gateway): marks what reached it."""
    scope["behind"] = "router"
    await JSONResponse({"behind": True}, status_code=404)(scope, receive, send)


async def test_a_full_match_is_handled_and_anything_else_goes_to_the_router() -> None:
    gateway = Recorder()
    app = TableDispatch(behind, gateway=gateway, index=RouteIndex(ROUTES, PREFIX))
    status, body, reached = await call(app, "GET", f"{PREFIX}/organizations/{ID}")
    assert (status, json.loads(body), reached) == (200, {"route": "/organizations/{org}"}, "")
    assert gateway.calls[0][1] == {"org": ID}
    for method, path in (
        ("PUT", f"{PREFIX}/organizations/{ID}"),  # no such method there: the 405 is theirs
        ("GET", f"{PREFIX}/organizations/{ID}/"),  # a trailing slash: their 404
        ("GET", f"{PREFIX}/organisations/{ID}"),
    ):
        assert (await call(app, method, path))[2] == "router", path
    assert len(gateway.calls) == 1


async def test_a_starlette_http_error_keeps_its_status() -> None:
    refused = HTTPException(status_code=413, detail="Too big.")
    app = TableDispatch(behind, gateway=Recorder(refused), index=RouteIndex(ROUTES, PREFIX))
    status, body, _ = await call(app, "GET", f"{PREFIX}/organizations/{ID}")
    assert status == 413
    assert json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_business_error_is_answered_with_its_code() -> None:
    refused = BusinessError("No.", code="INVALID_ID", status_code=422, details={"parameter": "org"})
    app = TableDispatch(behind, gateway=Recorder(refused), index=RouteIndex(ROUTES, PREFIX))
    status, body, reached = await call(app, "GET", f"{PREFIX}/organizations/..")
    assert status == 422 and reached == ""
    assert json.loads(body)["error"] == {
        "code": "INVALID_ID",
        "message": "No.",
        "details": {"parameter": "org"},
    }
