"""Store URLs for the memory tests: SQLite in tmp_path, and the real Redis / PostgreSQL on
127.0.0.1 (skipped with a reason when unreachable), each isolated by a unique prefix / schema that
is removed afterwards. CI sets GLM_AGENT_REQUIRE_SERVICES=1 to turn those skips into failures."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _unreachable(what: str) -> None:
    """Skip, or fail where CI demands the servers (GLM_AGENT_REQUIRE_SERVICES=1)."""
    reason = f"{what} is not reachable"
    if os.environ.get("GLM_AGENT_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " and GLM_AGENT_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _redis_url() -> Iterator[str]:
    if not _reachable(6379):
        _unreachable("Redis on 127.0.0.1:6379")
    import redis

    prefix = "glm_test_" + uuid.uuid4().hex[:12]
    yield f"{REDIS_URL}?prefix={prefix}"
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _postgres_url() -> Iterator[str]:
    if not _reachable(5432):
        _unreachable("PostgreSQL on 127.0.0.1:5432")
    import psycopg

    schema = "glm_test_" + uuid.uuid4().hex[:12]
    yield f"{POSTGRES_URL}?schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis store URL with a key prefix of its own."""
    yield from _redis_url()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL store URL with a schema of its own."""
    yield from _postgres_url()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of an empty store, for each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/sessions.db"
    elif request.param == "redis":
        yield from _redis_url()
    else:
        yield from _postgres_url()
