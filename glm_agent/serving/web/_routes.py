"""FastAPI routes serving the widget, its demo page and the console from `static/`."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

__all__ = ["build_router"]

_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}

# Pages of our own: scripts and styles only from this server, no framing by other sites.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _load(static: Path) -> dict[str, _Asset]:
    """Every servable file of `static/`, read once (the files are small and never change)."""
    assets: dict[str, _Asset] = {}
    for path in sorted(static.iterdir()):
        media_type = _MEDIA_TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.name] = _Asset(body, media_type, etag)
    return assets


def _respond(request: Request, asset: _Asset, headers: dict[str, str]) -> Response:
    # no-cache + ETag: browsers revalidate, so a deployed fix reaches every embedding site.
    common = {"ETag": asset.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    common.update(headers)
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=common)
    return Response(asset.body, media_type=asset.media_type, headers=common)


def build_router(static: Path) -> APIRouter:
    """The router over the files of `static` (see `glm_agent.serving.web.create_web_router`)."""
    assets = _load(static)
    for required in ("widget.js", "widget-demo.html", "console.html", "console.js"):
        if required not in assets:
            raise FileNotFoundError(f"web asset {required!r} is missing from {static}")
    page_headers = {"Content-Security-Policy": _PAGE_CSP, "Referrer-Policy": "no-referrer"}
    router = APIRouter(tags=["web"])

    @router.get("/widget.js", summary="The embeddable chat widget script")
    def widget(request: Request) -> Response:
        # Any site may load the script (and check it with Subresource Integrity).
        return _respond(request, assets["widget.js"], {"Access-Control-Allow-Origin": "*"})

    @router.get("/widget-demo", summary="A page embedding the widget with its one script tag")
    def widget_demo(request: Request) -> Response:
        return _respond(request, assets["widget-demo.html"], page_headers)

    @router.get("/console", summary="The human-agent console")
    def console(request: Request) -> Response:
        return _respond(request, assets["console.html"], page_headers)

    @router.get("/console/assets/{name}", summary="Scripts and styles of the console")
    def console_asset(name: str, request: Request) -> Response:
        asset = assets.get(name)
        if asset is None or name.endswith(".html"):
            valid = ", ".join(n for n in assets if not n.endswith(".html"))
            raise HTTPException(404, f"no web asset {name!r}; assets: {valid}")
        return _respond(request, asset, {})

    return router
