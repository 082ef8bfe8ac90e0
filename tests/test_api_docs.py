"""/docs (review F15): Swagger UI is served from this server's own files, pinned by the wheel, under a CSP;
staff paste the bearer token there, so no script may come from a CDN. ReDoc (CDN-only) is off."""

from __future__ import annotations

import re

import pytest
from fakes.server import ServerThread
from fakes.service import clean_env, make_service
from fastapi.testclient import TestClient

from admin_api.app import create_app


@pytest.fixture
def app(tmp_path, monkeypatch):
    clean_env(monkeypatch, tmp_path)
    return create_app(make_service(tmp_path / "bhxh.db"))


def test_docs_page_loads_only_local_scripts_and_styles_under_a_csp(app) -> None:
    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
        assert not re.search(r"https?://", page.text), "the docs page names an outside address"
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
        assert client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").json()["paths"]["/api/ask"]


def test_docs_render_the_api_in_a_real_browser_without_outside_requests(app, browser) -> None:
    with ServerThread(app) as server:
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # Swagger UI drew the operations
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/ask" in p for p in paths), paths
        outside = [u for u in requested if not u.startswith(server.url) and not u.startswith("data:")]
        assert outside == [], outside
