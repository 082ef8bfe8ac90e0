"""The API's interactive documentation (/docs), served from the pinned `swagger-ui-bundle-v2` wheel.

FastAPI's default page loads Swagger UI from a CDN at a floating version, and staff paste the bearer token
into that page (review F15); here every script and style comes from this server, under a CSP that allows
nothing else. ReDoc, which also loads from a CDN, is turned off.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
# Swagger UI's start-up script is inline (FastAPI writes it into the page), hence 'unsafe-inline' for scripts:
# nothing on this page echoes user input, and no script may come from anywhere but this server.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def add_local_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs from local files; the app must be created with docs_url=None, redoc_url=None."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} — API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page
