"""Evaluation fixtures: a copy of the Bamboo Lane example with a fast knowledge base."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from glm_agent.retrieval import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_SERVICE = ROOT / "examples" / "customer-service"


@pytest.fixture(scope="module")
def bamboo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The customer-service example in a temporary folder, its knowledge base built with the
    test embedder (hashing, no model files) instead of the bundled MiniLM, for speed."""
    folder = tmp_path_factory.mktemp("cs") / "customer-service"
    shutil.copytree(
        CUSTOMER_SERVICE, folder, ignore=shutil.ignore_patterns(".glm-agent", "__pycache__")
    )
    KnowledgeBase(folder / ".glm-agent" / "kb", embedder="test").close()
    mp = pytest.MonkeyPatch()
    mp.delenv("SUPPORT_SESSIONS_URL", raising=False)
    mp.delenv("CS_STORE_DB", raising=False)
    try:
        yield folder
    finally:
        mp.undo()
