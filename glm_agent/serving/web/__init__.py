"""Web front ends of the customer-service bot: the embeddable chat widget and the agent console.

```python
from glm_agent.serving.web import create_web_router
app.include_router(create_web_router())   # GET /widget.js, /widget-demo, /console
```

A site embeds the widget with one tag (see `embed_snippet`); the console is a single page
for human agents, served by the same server as the `/v1/support` and `/v1/console` APIs. Both
are plain files in `static/` (no framework, no external fetches). FastAPI is imported only
when the router is built, so importing this package stays light.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = ["STATIC_DIR", "create_web_router", "embed_snippet"]

STATIC_DIR: Path = Path(__file__).parent / "static"
"""The folder holding widget.js, the console page and their assets (shipped in the wheel)."""


def embed_snippet(server: str, *, title: str = "Support", locale: str | None = None) -> str:
    """The one `<script>` tag a site adds to show the chat widget.

    Args:
        server: Base URL of the glm-agent server, e.g. `https://bot.example.com`.
        title: Title shown in the chat panel's header.
        locale: `"zh"` or `"en"` to fix the widget's language (default: the browser's).
    """
    base = server.rstrip("/")
    attrs = [
        f'src="{html.escape(base)}/widget.js"',
        f'data-server="{html.escape(base)}"',
        f'data-title="{html.escape(title)}"',
    ]
    if locale is not None:
        attrs.append(f'data-locale="{html.escape(locale)}"')
    return f"<script {' '.join(attrs)} async></script>"


def create_web_router() -> APIRouter:
    """The routes serving the widget script, its demo page and the agent console.

    Returns:
        A FastAPI `APIRouter` with `GET /widget.js`, `GET /widget-demo`, `GET /console` and
        `GET /console/assets/{name}`.

    Raises:
        MissingDependencyError: FastAPI is not installed (extra `serve`).
    """
    try:
        from glm_agent.serving.web._routes import build_router
    except ImportError as e:
        from glm_agent.exceptions import MissingDependencyError

        raise MissingDependencyError(e.name or "fastapi", "serve", "the web front ends") from None
    return build_router(STATIC_DIR)
