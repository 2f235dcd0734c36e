"""`open_store(url)`: a session store chosen by URL."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from glm_agent._scrub import scrub
from glm_agent.exceptions import UserError
from glm_agent.memory._store import SessionStore

__all__ = ["open_store", "split_store_options"]

_SCHEMES = ("sqlite", "redis", "rediss", "postgresql", "postgres")

# Query parameters each store understands; the rest of the URL goes to the client library.
_OPTIONS = {
    "sqlite": ("ttl", "synchronous", "max_media_bytes"),
    "redis": ("ttl", "prefix", "max_media_bytes"),
    "postgresql": ("ttl", "schema", "pool_size", "open_timeout", "max_media_bytes"),
}


def split_store_options(url: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """`url` without the query parameters in `names`, and those parameters."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in names:
            ours[key] = value
        else:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


def _ttl(options: dict[str, str], url: str) -> float | None:
    raw = options.get("ttl")
    if raw is None or raw == "":
        return None
    try:
        ttl = float(raw)
    except ValueError:
        raise UserError(f"{scrub(url)}: ttl={raw!r} is not a number of seconds") from None
    if ttl <= 0:
        raise UserError(f"{scrub(url)}: ttl must be positive, got {ttl}")
    return ttl


def _media(store: SessionStore, options: dict[str, str], url: str) -> SessionStore:
    raw = options.get("max_media_bytes")
    if raw:
        if not raw.isdigit() or int(raw) < 1024:
            raise UserError(f"{scrub(url)}: max_media_bytes must be a number of bytes >= 1024")
        store.media_limits = dataclasses.replace(store.media_limits, max_bytes=int(raw))
    return store


def open_store(url: str) -> SessionStore:
    """A session store for `url`; connections open lazily, on first use.

    URLs:
        - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:`
          (options: `ttl`, `synchronous=full|normal`).
        - `redis://[user:password@]host:port/db` (options: `ttl`, `prefix`).
        - `postgresql://user@host:port/database` (options: `ttl`, `schema`, `pool_size`,
          `open_timeout`;
          other parameters go to libpq).

    `ttl` is the seconds a session lives after its last write; `max_media_bytes` the largest
    image the store keeps (default 5 MB), on every scheme.

    Raises:
        UserError: an unknown scheme or a bad option.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in _SCHEMES:
        raise UserError(
            f"unknown session store URL {scrub(url)!r}; schemes: sqlite:///path.db, "
            "redis://host:6379/0, postgresql://user@host/db"
        )
    if scheme == "sqlite":
        _, opts = split_store_options(url, _OPTIONS["sqlite"])
        # The path is read off the string: urlsplit/urlunsplit turn `sqlite:////abs` into a
        # host name, since `sqlite` is not a scheme they know takes one.
        path = "/" + url[len("sqlite:///") :].split("?", 1)[0]
        if not url.startswith("sqlite:///") or path in ("", "/"):
            raise UserError(
                f"bad SQLite URL {url!r}; use sqlite:///relative.db or sqlite:////abs.db"
            )
        from glm_agent.memory.sqlite_store import SQLiteStore

        store: SessionStore = SQLiteStore(
            path[1:], ttl=_ttl(opts, url), synchronous=opts.get("synchronous", "full")
        )
        return _media(store, opts, url)
    if scheme in ("redis", "rediss"):
        rest, opts = split_store_options(url, _OPTIONS["redis"])
        from glm_agent.memory.redis_store import RedisStore

        store = RedisStore(rest, ttl=_ttl(opts, url), prefix=opts.get("prefix", "glm_agent"))
        return _media(store, opts, url)
    rest, opts = split_store_options(url, _OPTIONS["postgresql"])
    from glm_agent.memory.postgres_store import PostgresStore

    try:
        pool_size = int(opts.get("pool_size", "10"))
        open_timeout = float(opts.get("open_timeout", "30"))
    except ValueError:
        raise UserError(
            f"{scrub(url)}: pool_size must be an integer, open_timeout a number of seconds"
        ) from None
    store = PostgresStore(
        rest,
        ttl=_ttl(opts, url),
        schema=opts.get("schema", "public"),
        pool_size=pool_size,
        open_timeout=open_timeout,
    )
    return _media(store, opts, url)
