"""Retrieval: a knowledge base over your documents, searched in Chinese and English, with citations.

```python
from glm_agent.retrieval import KnowledgeBase, format_context

kb = KnowledgeBase("kb/")                       # bundled all-MiniLM-L6-v2, offline
print(kb.ingest("docs/").summary())             # incremental: unchanged files are skipped
hits = kb.search("退货政策是什么？", k=5)         # hybrid: dense + BM25, fused; 5 documents
print(format_context(hits))                     # numbered passages to cite as [1], [2]

shared = KnowledgeBase(".cache/kb", backend="milvus", uri="http://milvus:19530")  # many replicas
```

Loaders read text, Markdown, HTML, PDF (tables as Markdown, scanned pages by OCR), DOCX, JSON,
CSV and images (OCR); see docs/knowledge.md.

Usable without an agent: this package imports only the shared vocabulary (exceptions); faiss,
bm25s, jieba, sentence-transformers, pymilvus, the OCR engine and the document parsers are
imported when first used.
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
from glm_agent.retrieval.loaders import (
    DocumentLoadError,
    FolderReadError,
    LoadedDocument,
    iter_files,
    load_file,
    read_document,
)
from glm_agent.retrieval.milvus_filter import milvus_filter
from glm_agent.retrieval.milvus_index import MilvusIndex, connect_milvus
from glm_agent.retrieval.ocr import OcrLine, ocr_image, ocr_text
from glm_agent.retrieval.records import (
    Chunk,
    Citation,
    FileFailure,
    Hit,
    IngestProgress,
    IngestReport,
    Section,
)
from glm_agent.retrieval.rerank import CrossEncoderReranker, Reranker
from glm_agent.retrieval.tables import markdown_table, split_markdown_table
from glm_agent.retrieval.text_decoding import DecodedText, decode_text

__all__ = [
    "BM25Index",
    "CachedEmbedder",
    "Chunk",
    "Citation",
    "CrossEncoderReranker",
    "DecodedText",
    "DocumentLoadError",
    "Embedder",
    "FaissIndex",
    "FileFailure",
    "FolderReadError",
    "Hit",
    "IndexKind",
    "IngestProgress",
    "IngestReport",
    "KnowledgeBase",
    "LoadedDocument",
    "MilvusIndex",
    "OcrLine",
    "OpenAIEmbedder",
    "Reranker",
    "SearchMode",
    "Section",
    "SentenceTransformerEmbedder",
    "TestEmbedder",
    "TokenCounter",
    "choose_index_kind",
    "chunk_sections",
    "connect_milvus",
    "convex_fuse",
    "decode_text",
    "default_model_path",
    "embed_in_batches",
    "estimate_tokens",
    "format_context",
    "iter_files",
    "load_file",
    "markdown_table",
    "milvus_filter",
    "normalize",
    "ocr_image",
    "ocr_text",
    "read_document",
    "resolve_embedder",
    "rrf_fuse",
    "split_markdown_table",
    "split_sentences",
    "stem",
    "tokenize",
    "write_atomic",
]
