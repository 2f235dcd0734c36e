"""Retrieval: a knowledge base over your documents, searched in Chinese and English, with citations.

```python
from glm_agent.retrieval import KnowledgeBase, format_context

kb = KnowledgeBase("kb/")                       # bundled all-MiniLM-L6-v2, offline
print(kb.ingest("docs/").summary())             # incremental: unchanged files are skipped
hits = kb.search("退货政策是什么？", k=5)         # hybrid: FAISS + BM25, fused by RRF
print(format_context(hits))                     # numbered passages to cite as [1], [2]
```

Usable without an agent: this package imports only the shared vocabulary (exceptions); faiss,
bm25s, jieba, sentence-transformers and the document parsers are imported when first used.
"""

from glm_agent.retrieval.chunking import (
    TokenCounter,
    chunk_sections,
    estimate_tokens,
    split_sentences,
)
from glm_agent.retrieval.context import format_context
from glm_agent.retrieval.embedders import (
    Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    TestEmbedder,
    default_model_path,
    normalize,
    resolve_embedder,
)
from glm_agent.retrieval.embedding_cache import CachedEmbedder, embed_in_batches
from glm_agent.retrieval.faiss_index import (
    FaissIndex,
    IndexKind,
    choose_index_kind,
    write_atomic,
)
from glm_agent.retrieval.knowledge_base import KnowledgeBase, SearchMode
from glm_agent.retrieval.lexical import BM25Index, convex_fuse, rrf_fuse, stem, tokenize
from glm_agent.retrieval.loaders import DocumentLoadError, iter_files, load_file
from glm_agent.retrieval.records import Chunk, Citation, FileFailure, Hit, IngestReport, Section
from glm_agent.retrieval.rerank import CrossEncoderReranker, Reranker

__all__ = [
    "BM25Index",
    "CachedEmbedder",
    "Chunk",
    "Citation",
    "CrossEncoderReranker",
    "DocumentLoadError",
    "Embedder",
    "FaissIndex",
    "FileFailure",
    "Hit",
    "IndexKind",
    "IngestReport",
    "KnowledgeBase",
    "OpenAIEmbedder",
    "Reranker",
    "SearchMode",
    "Section",
    "SentenceTransformerEmbedder",
    "TestEmbedder",
    "TokenCounter",
    "choose_index_kind",
    "chunk_sections",
    "convex_fuse",
    "default_model_path",
    "embed_in_batches",
    "estimate_tokens",
    "format_context",
    "iter_files",
    "load_file",
    "normalize",
    "resolve_embedder",
    "rrf_fuse",
    "split_sentences",
    "stem",
    "tokenize",
    "write_atomic",
]
