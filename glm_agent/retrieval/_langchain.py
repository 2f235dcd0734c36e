"""A langchain-core retriever over a KnowledgeBase (imported only when asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_agent.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from glm_agent.retrieval.knowledge_base import KnowledgeBase, SearchMode


def make_retriever(kb: KnowledgeBase, *, k: int, mode: SearchMode) -> Any:
    """A `BaseRetriever` whose documents carry the hit's score and citation as metadata."""
    try:
        from langchain_core.callbacks import CallbackManagerForRetrieverRun
        from langchain_core.documents import Document
        from langchain_core.retrievers import BaseRetriever
    except ImportError as e:
        raise MissingDependencyError(
            "langchain-core", "langchain", "the LangChain retriever"
        ) from e

    class KnowledgeBaseRetriever(BaseRetriever):
        """Searches a glm-agent KnowledgeBase."""

        kb: Any
        k: int = 5
        mode: str = "hybrid"

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            hits = self.kb.search(query, k=self.k, mode=self.mode)
            return [
                Document(
                    page_content=h.text,
                    metadata={
                        "score": h.score,
                        "source": h.citation.source,
                        "title": h.citation.title,
                        "page": h.citation.page,
                        "heading_path": list(h.citation.heading_path),
                        "chunk_id": h.citation.chunk_id,
                        **h.metadata,
                    },
                )
                for h in hits
            ]

    return KnowledgeBaseRetriever(kb=kb, k=k, mode=mode)
