"""``/docs``: Swagger UI for the public API, served by the gateway itself.

FastAPI's default page loads Swagger UI from a CDN and stays blank on a machine without
internet. The assets come from a pinned package (``fastapi-offline``, Swagger UI 5: it renders
OpenAPI 3.1) and are served from a fixed list of names, so nothing else of the file system is
reachable through this route.

The document itself is ``contracts/openapi.json``, assembled at build time from the route table
and the services' own models (``slipway_gateway.api.openapi``), read once and served as it is.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from slipway_contracts.openapi import DOCUMENT_PATH
from slipway_libs.errors import Missing

ASSETS = "/docs/assets"
_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
_CACHE = "public, max-age=86400"  # the names change with the pinned version's files only


def docs_router(*, openapi_url: str, title: str) -> APIRouter:
    router = APIRouter()
    static = files("fastapi_offline") / "static"
    document = DOCUMENT_PATH.read_bytes()

    @router.get(openapi_url, include_in_schema=False)
    async def openapi() -> Response:
        return Response(document, media_type="application/json")

    @router.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )

    @router.get(f"{ASSETS}/{{name}}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = _TYPES.get(name)
        if media_type is None:
            raise Missing("NOT_FOUND", "No such documentation asset.")
        content = (static / name).read_bytes()
        return Response(content, media_type=media_type, headers={"Cache-Control": _CACHE})

    return router
