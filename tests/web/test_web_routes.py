"""The web routes over HTTP (in process), the embed snippet, and the cost of importing."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from glm_agent.serving.web import STATIC_DIR, create_web_router, embed_snippet


@pytest.fixture
def client() -> httpx.Client:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    app.include_router(create_web_router())
    return TestClient(app)


def test_importing_the_package_does_not_import_fastapi() -> None:
    code = (
        "import sys, glm_agent.serving.web as w; w.embed_snippet('http://x'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_widget_script_is_served_with_revalidation(client: httpx.Client) -> None:
    r = client.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.content == (STATIC_DIR / "widget.js").read_bytes()
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cache-control"] == "no-cache"
    again = client.get("/widget.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    stale = client.get("/widget.js", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


@pytest.mark.parametrize("path", ["/widget-demo", "/console"])
def test_pages_are_html_with_a_strict_csp(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "<script" in r.text
    # Nothing on the pages comes from another host.
    assert "http://" not in r.text
    assert "https://" not in r.text


def test_demo_page_embeds_the_widget_with_one_tag(client: httpx.Client) -> None:
    page = client.get("/widget-demo").text
    assert page.count('<script src="/widget.js"') == 1


def test_console_assets_only_from_the_static_folder(client: httpx.Client) -> None:
    assert client.get("/console/assets/console.js").status_code == 200
    css = client.get("/console/assets/console.css")
    assert css.headers["content-type"].startswith("text/css")
    for bad in ("nope.js", "console.html", "..%2F__init__.py", "%2E%2E%2F_routes.py"):
        r = client.get(f"/console/assets/{bad}")
        assert r.status_code == 404, bad
    listed = client.get("/console/assets/nope.js").json()["detail"]
    assert "console.js" in listed
    assert "widget.js" in listed


def test_embed_snippet_escapes_attributes() -> None:
    tag = embed_snippet("https://bot.example.com/", title='Acme "Help"', locale="zh")
    assert tag == (
        '<script src="https://bot.example.com/widget.js" data-server="https://bot.example.com" '
        'data-title="Acme &quot;Help&quot;" data-locale="zh" async></script>'
    )


def test_public_api_is_sorted() -> None:
    import glm_agent.serving.web as web

    assert web.__all__ == sorted(web.__all__)
    assert all(hasattr(web, name) for name in web.__all__)


def test_static_files_are_in_the_wheel() -> None:
    builders = pytest.importorskip("hatchling.builders.wheel", reason="needs hatchling")
    root = STATIC_DIR.parents[3]
    builder = builders.WheelBuilder(str(root))
    shipped = {f.distribution_path for f in builder.recurse_included_files()}
    static = {f"glm_agent/serving/web/static/{p.name}" for p in STATIC_DIR.iterdir()}
    assert static <= shipped, static - shipped
