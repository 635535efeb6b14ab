"""The public OpenAPI 3.1 document, assembled at build time (``make openapi``).

One source of truth: the route table says which operations exist, who may call them and what
the gateway itself refuses; each internal service's own document (``openapi_fragment()`` of its
``api`` package, generated from the pydantic models its routes validate and answer with) says
what each operation takes and answers. The gateway imports no service: ``deploy/openapi.py``
collects the services' documents, calls ``assemble`` and writes ``contracts/openapi.json``, the
committed contract the running gateway serves as it is (no network call, nothing built at start).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from slipway_gateway.api.routes import PREFIX, add_route, not_found_code
from slipway_gateway.api.table import ROUTES, RouteSpec
from slipway_libs.errors import ErrorResponse

Document = dict[str, Any]
TITLE = "Slipway API"
REF = "#/components/schemas/"
ERROR = {"$ref": f"{REF}ErrorResponse"}
# FastAPI's own validation models: every service answers ErrorResponse instead
_FASTAPI_MODELS = {"HTTPValidationError", "ValidationError"}

SECURITY_SCHEMES = {
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A session's access token (POST /auth/login): "
        "`Authorization: Bearer <token>`.",
    },
    "Token": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "An organization's API token: `Authorization: Token slw_…`.",
    },
}

UPSTREAM_CODES = "x-slipway-codes"  # a service's refusals of a route (slipway_libs.openapi)
IDEMPOTENCY_KEY = "idempotency-key"
IF_MATCH = "if-match"

# the tag of an operation: the last resource its path names
_RESOURCES = {
    "auth": "auth",
    "me": "auth",
    "organizations": "organizations",
    "members": "members",
    "invitations": "invitations",
    "roles": "roles",
    "api-tokens": "api-tokens",
    "audit-events": "audit",
    "clusters": "clusters",
    "projects": "projects",
    "environments": "environments",
    "services": "services",
    "stages": "stages",
    "variables": "variables",
    "deployments": "deployments",
    "logs": "logs",
    "log-retention": "logs",
    "webhooks": "webhooks",
    "git-webhooks": "git-webhooks",
    "hooks": "git-webhooks",
}


def assemble(fragments: Mapping[str, Document]) -> Document:
    """The public document: the table's routes with the services' schemas."""
    document = _base()
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    upstreams = {
        name: _namespaced(name, fragment, fragments) for name, fragment in fragments.items()
    }
    for fragment in upstreams.values():
        for name, schema in fragment.get("components", {}).get("schemas", {}).items():
            if name not in _FASTAPI_MODELS:
                schemas.setdefault(name, schema)
    for name in _FASTAPI_MODELS:
        schemas.pop(name, None)
    schemas["ErrorResponse"] = ErrorResponse.model_json_schema(ref_template=REF + "{model}")
    schemas.update(schemas["ErrorResponse"].pop("$defs", {}))
    for spec in ROUTES:
        operation = document["paths"][PREFIX + spec.path][spec.method.lower()]
        # a route the gateway answers itself (the event stream) is documented by route_docs
        upstream = upstreams.get(spec.upstream)
        _complete(operation, spec, _upstream_operation(upstream, spec) if upstream else {})
    _answer_headers(document)
    _link(document)
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    document["tags"] = [{"name": tag} for tag in sorted({_tag(spec) for spec in ROUTES})]
    _prune(document)
    return document


def render(document: Document) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _base() -> Document:
    """FastAPI's document of the table's routes: paths, summaries, and what the gateway itself
    serves (the logs routes' event streams and sockets, ``route_docs``)."""

    async def unused(request: Request) -> Response:  # never called: only documented
        raise NotImplementedError

    router = APIRouter(prefix=PREFIX)
    for spec in ROUTES:
        add_route(router, spec, unused)
    app = FastAPI(title=TITLE, version="1")
    app.include_router(router)
    return copy.deepcopy(app.openapi())


def _namespaced(
    service: str, fragment: Document, all_fragments: Mapping[str, Document]
) -> Document:
    """The fragment with each schema that another service defines otherwise renamed
    ``<Service><Name>``, references included: two services' ``Page`` stay two schemas."""
    own = fragment.get("components", {}).get("schemas", {})
    renamed = {}
    for name, schema in own.items():
        others = (
            other.get("components", {}).get("schemas", {}).get(name)
            for other_name, other in all_fragments.items()
            if other_name != service
        )
        if any(o is not None and o != schema for o in others):
            renamed[name] = service.capitalize() + name
    text = json.dumps(fragment)
    for old, new in renamed.items():
        text = text.replace(f'"{REF}{old}"', f'"{REF}{new}"')
    result: Document = json.loads(text)
    schemas = result.get("components", {}).get("schemas", {})
    for old, new in renamed.items():
        schemas[new] = schemas.pop(old)
    return result


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _upstream_operation(fragment: Document, spec: RouteSpec) -> Document:
    method = (spec.upstream_method or spec.method).lower()
    wanted = _template(spec.upstream_path)
    for path, operations in fragment["paths"].items():
        if _template(path) == wanted and method in operations:
            operation: Document = operations[method]
            return operation
    raise LookupError(f"{spec.upstream} declares no {method.upper()} {spec.upstream_path}")


def operation_id(spec: RouteSpec) -> str:
    """Stable: the method and the public path (``post_environments_environment_deploy``)."""
    words = re.sub(r"[{}]", "", spec.path).replace("-", "_").strip("/").replace("/", "_")
    return f"{spec.method.lower()}_{words}"


def _tag(spec: RouteSpec) -> str:
    if spec.upstream == "deployer":
        return "deployments"
    if spec.path.endswith(("/schedule", "/deployment-rule")):
        return "environments"
    named = [_RESOURCES[part] for part in spec.path.split("/") if part in _RESOURCES]
    return named[-1]


def _security(spec: RouteSpec) -> list[dict[str, list[str]]]:
    if spec.access == "public":
        return []
    if spec.access == "user" and not (spec.method == "GET" and spec.path == "/organizations"):
        return [{"Bearer": []}]  # an API token answers 403 USERS_ONLY
    return [{"Bearer": []}, {"Token": []}]


def _complete(operation: Document, spec: RouteSpec, upstream: Document) -> None:
    operation["operationId"] = operation_id(spec)
    operation["tags"] = [_tag(spec)]
    operation["security"] = _security(spec)
    if upstream.get("description") and "description" not in operation:
        operation["description"] = upstream["description"]
    parameters = _parameters(operation, spec, upstream)
    if parameters:
        operation["parameters"] = parameters
    if "requestBody" in upstream and "requestBody" not in operation:
        operation["requestBody"] = upstream["requestBody"]
    operation["responses"] = _responses(operation, spec, upstream)
    creates = spec.method == "POST" and spec.success in (201, 202) and spec.access != "public"
    if creates and IDEMPOTENCY_KEY not in _headers(operation):
        operation["description"] = (
            operation.get("description", "") + "\n\n" + NOT_IDEMPOTENT
        ).strip()


# said of a creating or triggering POST whose service does not honour Idempotency-Key (an API
# token's, an invitation's or a webhook's answer carries a secret shown once)
NOT_IDEMPOTENT = (
    "Takes no `Idempotency-Key`: a retry after a timeout or a 5xx may do it twice; "
    "read the current state before sending it again."
)


def _parameters(operation: Document, spec: RouteSpec, upstream: Document) -> list[Document]:
    """The public path's ids, then the service's query and header parameters."""
    names = [part[1:-1] for part in spec.path.split("/") if part.startswith("{")]
    found = {(p["in"], p["name"].lower()): p for p in operation.get("parameters", [])}
    for name in names:
        found.setdefault(
            ("path", name),
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            },
        )
    for parameter in upstream.get("parameters", []):
        where, name = parameter["in"], parameter["name"].lower()
        if where == "path" or name.startswith("x-slipway"):
            continue
        found.setdefault((where, name), parameter)
    order = {"path": 0, "query": 1, "header": 2}
    return sorted(found.values(), key=lambda p: order.get(p["in"], 3))


def _responses(operation: Document, spec: RouteSpec, upstream: Document) -> Document:
    mine = operation.get("responses", {})
    theirs = upstream.get("responses", {})
    success = str(spec.success)
    answer = mine.get(success) or {}
    if spec.success == 204:
        answers: Document = {success: {"description": "Done; no content."}}
    else:
        declared: Document = theirs.get(success) or next(
            (r for code, r in theirs.items() if code.startswith("2")), {}
        )
        content = answer.get("content") or {}
        if _untyped(content):
            content = declared.get("content") or content
        if content.get("application/json", {}).get("schema") == {} and len(content) > 1:
            # FastAPI's default for a handler without a model: the route answers another type
            content = {k: v for k, v in content.items() if k != "application/json"}
        answers = {
            success: {
                "description": answer.get("description") or declared.get("description") or "OK",
                "content": content,
            }
        }
    for status, codes in sorted(_errors(spec, operation, upstream).items()):
        answers[str(status)] = _error(status, codes)
    answers["default"] = {
        "description": "Any other refusal: the shared error model, with its stable code.",
        "content": {"application/json": {"schema": ERROR}},
    }
    return answers


def _headers(operation: Document) -> set[str]:
    return {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}


def _answer_headers(document: Document) -> None:
    """The headers success answers carry: a versioned resource's ``ETag`` (what If-Match sends
    back: every answer of a resource some operation takes If-Match for), a retried request's
    ``Idempotent-Replayed``."""
    operations = [o for methods in document["paths"].values() for o in methods.values()]
    versioned = {
        ref for o in operations if IF_MATCH in _headers(o) for ref in _success_refs(o).values()
    }
    for operation in operations:
        for status, ref in _success_refs(operation).items():
            if ref in versioned:
                operation["responses"][status].setdefault("headers", {})["ETag"] = ETAG
        if IDEMPOTENCY_KEY in _headers(operation):
            for status, answer in operation["responses"].items():
                if status.startswith("2"):
                    answer.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED


ETAG = {
    "description": 'The resource\'s version, `"<resource_version>"`: sent back as If-Match, a '
    "change applies only if nobody changed the resource since (412 otherwise).",
    "schema": {"type": "string", "examples": ['"3"']},
}
REPLAYED = {
    "description": "`true` when this is the stored first answer to a retry with the same "
    "Idempotency-Key: nothing was done again.",
    "schema": {"type": "string", "enum": ["true"]},
}


def _success_refs(operation: Document) -> dict[str, str]:
    """The success statuses whose answer is a component, and that component's reference."""
    refs = {}
    for status, answer in operation["responses"].items():
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if status.startswith("2") and "$ref" in schema:
            refs[status] = schema["$ref"]
    return refs


def _untyped(content: Document) -> bool:
    schema = content.get("application/json", {}).get("schema")
    return not schema or schema == {} or schema == {"type": "object"}


def _errors(spec: RouteSpec, operation: Document, upstream: Document) -> dict[int, list[str]]:
    """Each error status the operation answers and the codes the gateway knows it for."""
    errors: dict[int, list[str]] = {}
    body = "requestBody" in upstream or spec.method in ("POST", "PUT", "PATCH")
    ids = "{" in spec.path
    if body:
        errors[400] = ["MALFORMED_JSON"]
        errors[413] = ["PAYLOAD_TOO_LARGE"]
        errors[415] = ["UNSUPPORTED_MEDIA_TYPE"]
    if spec.access != "public":
        errors[401] = ["UNAUTHENTICATED"]
    if spec.access == "user" and _security(spec) == [{"Bearer": []}]:
        errors[403] = ["USERS_ONLY"]
    if spec.access == "member":
        errors[403] = ["FORBIDDEN"]
        errors[404] = [not_found_code(spec.target)]
    queried = any(p["in"] == "query" for p in operation.get("parameters", []))
    if ids or body or queried or upstream.get("parameters"):
        errors[422] = (["INVALID_ID"] if ids else []) + ["VALIDATION_ERROR"]
    for status, answer in upstream.get("responses", {}).items():
        if status.isdigit() and int(status) >= 400:
            known = errors.setdefault(int(status), [])
            known += [c for c in answer.get(UPSTREAM_CODES, []) if c not in known]
    headers = _headers(operation)
    if IDEMPOTENCY_KEY in headers:
        errors[409] = [*errors.get(409, []), "IDEMPOTENCY_KEY_IN_USE"]
        errors[422] = [*errors.get(422, []), "INVALID_IDEMPOTENCY_KEY", "IDEMPOTENCY_KEY_REUSED"]
    if IF_MATCH in headers:
        errors[412] = ["PRECONDITION_FAILED"]
    errors[503] = ["UPSTREAM_UNAVAILABLE", "GATEWAY_BUSY"]
    errors[504] = ["UPSTREAM_TIMEOUT"]
    return errors


_MEANING = {
    400: "Malformed request",
    401: "No valid credentials",
    403: "Not allowed",
    404: "Unknown, deleted or another organization's (all answer alike)",
    409: "Conflicts with the current state",
    412: "The resource changed since the version named in If-Match",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Invalid request: the details name each field at fault",
    429: "Too many requests: retry after Retry-After seconds",
    503: "A service behind the gateway is unavailable: retry",
    504: "A service behind the gateway did not answer in time: retry",
}


def _error(status: int, codes: list[str]) -> Document:
    meaning = _MEANING.get(status, "Refused")
    content: Document = {"schema": ERROR}
    if codes:
        meaning += ": " + ", ".join(f"`{c}`" for c in codes)
        content["example"] = {"error": {"code": codes[0], "message": "…", "details": None}}
    return {
        "description": meaning,
        "content": {"application/json": content},
    }


# a collection and the path parameter that names one of its members
_MEMBERS = {
    "organizations": "org",
    "clusters": "cluster",
    "projects": "project",
    "environments": "environment",
    "clone": "environment",
    "services": "service",
    "stages": "stage",
    "variables": "variable",
    "roles": "role",
    "api-tokens": "token",
    "webhooks": "webhook",
    "git-webhooks": "git_webhook",
}


def _link(document: Document) -> None:
    """OpenAPI links from what creates a resource to what reads, changes or acts on it (a
    created id; a deployment a request queued): clients and stateful tests follow them."""
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    for path, method, operation in operations:
        if method != "post":
            continue
        if "201" in operation["responses"]:
            param = _MEMBERS.get(path.rstrip("/").split("/")[-1])
            status, source = "201", "$response.body#/id"
        elif _answers_deployment(document, operation):
            param, status, source = "deployment", "202", "$response.body#/deployment_id"
        else:
            continue
        if param is None:
            continue
        links = {}
        for target_path, _, target in operations:
            wanted = _parameters_of(target_path)
            if _streams_only(target):
                continue
            if param not in wanted or not target_path.startswith(_owner(target_path, param)):
                continue
            known = set(_parameters_of(path))
            if not set(wanted) - {param} <= known:
                continue
            parameters = {name: f"$request.path.{name}" for name in wanted if name != param}
            parameters[param] = source
            links[target["operationId"]] = {
                "operationId": target["operationId"],
                "parameters": parameters,
            }
        if links:
            operation["responses"][status]["links"] = links


def _streams_only(operation: Document) -> bool:
    """An answer that never ends (the event stream): nothing to follow a link into."""
    answers = [r for code, r in operation["responses"].items() if code.startswith("2")]
    return all(
        "application/json" not in r.get("content", {"application/json": {}}) for r in answers
    )


def _parameters_of(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


def _owner(path: str, param: str) -> str:
    """The path up to the member ``param`` names: a link targets that member's operations."""
    return path[: path.index("{" + param + "}")]


def _answers_deployment(document: Document, operation: Document) -> bool:
    schema = operation["responses"].get("202", {}).get("content", {})
    ref = schema.get("application/json", {}).get("schema", {}).get("$ref", "")
    answer = document["components"]["schemas"].get(ref.removeprefix(REF), {})
    return "deployment_id" in answer.get("properties", {})


def _prune(document: Document) -> None:
    """Only the schemas the public operations reach (the services' internal-only ones go)."""
    schemas = document["components"]["schemas"]
    reached: set[str] = set()
    pending = _refs(document["paths"])
    while pending:
        name = pending.pop()
        if name in reached or name not in schemas:
            continue
        reached.add(name)
        pending |= _refs(schemas[name])
    document["components"]["schemas"] = {n: schemas[n] for n in sorted(reached)}


def _refs(node: Any) -> set[str]:
    return set(re.findall(re.escape(REF) + r'([^"]+)"', json.dumps(node)))
