"""``/docs`` works offline: the page names only assets the gateway itself serves (Swagger UI
from a CDN stayed blank on a machine without internet), and those assets are served."""

from __future__ import annotations

import re

import httpx

from slipway_libs.testing.platform import Platform


async def test_the_docs_page_loads_nothing_from_another_host(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=10) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
        assert "/api/v1/openapi.json" in urls
        external = [u for u in urls if re.match(r"(?i)^(https?:)?//", u)]
        assert external == [], f"the page loads from other hosts: {external}"
        assets = [u for u in urls if u.startswith("/docs/assets/")]
        assert len(assets) == 3, urls
        for url in assets:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000, url
        bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert b"SwaggerUIBundle" in bundle.content


async def test_only_the_listed_assets_are_served(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=10) as client:
        for name in ("core.py", "..%2F__init__.py", "%2e%2e", "swagger-ui.css.map", ""):
            response = await client.get(f"/docs/assets/{name}")
            assert response.status_code == 404, (name, response.text)
