"""`PrefixCache`: the KV of recent sequences in a radix tree over token ids, so that a new
request prefills only the tokens no earlier request has computed.

An agent run calls the model again and again on a prompt that only grows (system prompt,
tools, history, then each step's tool results), and the sessions of one bot share their system
prompt and tools. Each finished request leaves its prompt and the tokens it generated here;
the next request copies the K/V of its longest cached prefix into its own cache and prefills
the rest (the idea of SGLang's RadixAttention, at the granularity of tree edges).

Why a copy is exact: the K/V of token `i` depends only on tokens `0..i` and on its position
`i` (RoPE is applied from position ids, never from cache slots, and left padding is masked
out), so the K/V computed for the same first `i + 1` tokens by any earlier request, in any
batch row or cache slot, is the K/V a full prefill would compute, up to float rounding of
differently shaped matmuls.

Each edge holds its own K/V tensors (`[kv_heads, n, head_dim]` per layer): a path's
segments are copied into a request's cache one after the other, and a request only copies out
the tokens that were not in the tree. Memory is bounded by `max_bytes`: past it, the least
recently used leaves go first (an inner node is never older than its newest leaf).
"""

from __future__ import annotations

import logging
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from glm_agent.runtime.transformers_compat import allocate_static_cache, static_cache_tensors

if TYPE_CHECKING:
    import torch

__all__ = [
    "KV",
    "PrefixCache",
    "PrefixCacheStats",
    "PrefixMatch",
    "keep_sequences",
    "load_prefixes",
]

log = logging.getLogger("glm_agent.runtime")

KV = list[tuple["torch.Tensor", "torch.Tensor"]]
"""Per layer, keys and values of a run of tokens: `[kv_heads, n, head_dim]` each."""


def _ids(tokens: Sequence[int]) -> array[int]:
    return tokens if isinstance(tokens, array) else array("q", tokens)


def _common(edge: array[int], tokens: array[int], at: int, limit: int) -> int:
    """How many leading tokens of `edge` equal `tokens[at:limit]` (slice compares, O(n) in C)."""
    m = min(len(edge), limit - at)
    if edge[:m] == tokens[at : at + m]:
        return m
    lo, hi = 0, m  # edge[:lo] matches, edge[:hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if edge[lo:mid] == tokens[at + lo : at + mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _nbytes(kv: KV) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


@dataclass(eq=False)
class _Node:
    tokens: array[int]
    kv: KV
    parent: _Node | None
    children: dict[int, _Node] = field(default_factory=dict)
    last_used: int = 0
    nbytes: int = 0


@dataclass(frozen=True)
class PrefixMatch:
    """The cached part of one sequence: its length and where its K/V lies.

    Attributes:
        length: Leading tokens whose K/V is cached.
        segments: `(kv, count)` per tree edge on the path, in order; `count` leading tokens of
            each edge belong to the match.
    """

    length: int = 0
    segments: tuple[tuple[KV, int], ...] = ()
    _path: tuple[_Node, ...] = ()

    def copy_into(self, layers: KV, row: int, slot: int, count: int | None = None) -> None:
        """Write the K/V of the first `count` matched tokens into a batch cache.

        Args:
            layers: Per layer, the cache's keys and values `[B, kv_heads, slots, head_dim]`.
            row: The batch row.
            slot: The cache slot of the first token.
            count: Tokens to copy (at most `length`); None: all of them.
        """
        left = self.length if count is None else min(count, self.length)
        for kv, n in self.segments:
            n = min(n, left)
            if n <= 0:
                break
            for (k_dst, v_dst), (k, v) in zip(layers, kv, strict=True):
                k_dst[row, :, slot : slot + n].copy_(k[:, :n])
                v_dst[row, :, slot : slot + n].copy_(v[:, :n])
            slot += n
            left -= n


@dataclass
class PrefixCacheStats:
    """Counters since the cache was made (or `clear`ed).

    Attributes:
        requests: Sequences that looked for a cached prefix.
        prompt_tokens: Their prompt tokens.
        reused_tokens: Prompt tokens whose K/V came from the cache instead of a prefill.
        inserted_tokens: Tokens whose K/V was copied into the cache.
        evicted_tokens: Tokens dropped to stay within the budget (or discarded after a failure).
    """

    requests: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    inserted_tokens: int = 0
    evicted_tokens: int = 0

    @property
    def hit_rate(self) -> float:
        """Share of prompt tokens served from the cache."""
        return self.reused_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


class PrefixCache:
    """K/V of recent token sequences, reused by requests that start the same way.

    Thread-safe: lookups, insertions and evictions hold one lock; the K/V tensors of a node are
    never written after it is made, so a request copying from a match is unaffected by a
    concurrent eviction (the tensors live while the match refers to them).

    Args:
        max_bytes: Most bytes of K/V kept; 0 keeps nothing.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.stats = PrefixCacheStats()
        self._root = _Node(array("q"), [], None)
        self._nodes: set[_Node] = set()
        self._bytes = 0
        self._tokens = 0
        self._clock = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        """Bytes of K/V held now."""
        return self._bytes

    @property
    def tokens(self) -> int:
        """Tokens whose K/V is held now (shared prefixes counted once)."""
        return self._tokens

    def __len__(self) -> int:
        """Tree edges held (each with its own K/V tensors)."""
        return len(self._nodes)

    def _touch(self, path: Sequence[_Node]) -> None:
        self._clock += 1
        for node in path:
            node.last_used = self._clock

    def match(self, tokens: Sequence[int], limit: int | None = None) -> PrefixMatch:
        """The longest cached prefix of `tokens`, at most `limit` tokens long.

        Marks the path as recently used. A request passes `limit = len(prompt) - 1`: the last
        prompt token is always computed, its logits give the first new token.
        """
        ids = _ids(tokens)
        end = len(ids) if limit is None else max(0, min(limit, len(ids)))
        segments: list[tuple[KV, int]] = []
        path: list[_Node] = []
        with self._lock:
            node, at = self._root, 0
            while at < end:
                child = node.children.get(ids[at])
                if child is None:
                    break
                n = _common(child.tokens, ids, at, end)
                segments.append((child.kv, n))
                path.append(child)
                at += n
                if n < len(child.tokens):
                    break
                node = child
            self._touch(path)
        return PrefixMatch(at, tuple(segments), tuple(path))

    def record(self, prompt_tokens: int, reused_tokens: int) -> None:
        """Count one request's prompt and the part of it taken from the cache."""
        with self._lock:
            self.stats.requests += 1
            self.stats.prompt_tokens += prompt_tokens
            self.stats.reused_tokens += reused_tokens

    def insert(self, tokens: Sequence[int], read: Callable[[int, int], KV]) -> int:
        """Keep the K/V of `tokens`, copying out only what the tree does not hold yet.

        Args:
            tokens: The sequence (prompt and the generated tokens fed back to the model).
            read: `read(a, b)` returns fresh tensors with the K/V of `tokens[a:b]`.

        Returns:
            Tokens added. K/V that is not finite is refused (logged): a cached NaN would
            poison every later request sharing the prefix.
        """
        ids = _ids(tokens)
        n = len(ids)
        if self.max_bytes == 0 or n == 0:
            return 0
        with self._lock:
            node, at = self._root, 0
            path: list[_Node] = []
            while at < n:
                child = node.children.get(ids[at])
                if child is None:
                    break
                m = _common(child.tokens, ids, at, n)
                if m < len(child.tokens) and at + m < n:
                    child = self._split(child, m)
                path.append(child)
                at += m
                node = child
            added = 0
            if at < n:
                kv = read(at, n)
                size = _nbytes(kv)
                if size > self.max_bytes:
                    kv = []  # alone it would not fit: keep the tree as it is
                elif not all(bool(k.isfinite().all() and v.isfinite().all()) for k, v in kv):
                    log.warning("prefix cache: refused %d tokens of non-finite K/V", n - at)
                    kv = []
                if kv:
                    leaf = _Node(ids[at:], kv, node, nbytes=size)
                    node.children[ids[at]] = leaf
                    self._nodes.add(leaf)
                    path.append(leaf)
                    self._bytes += size
                    self._tokens += n - at
                    added = n - at
                    self.stats.inserted_tokens += added
            self._touch(path)
            self._evict_locked(self._bytes - self.max_bytes)
            return added

    def _split(self, node: _Node, m: int) -> _Node:
        """Cut `node`'s edge after `m` tokens; returns the new upper node."""
        assert node.parent is not None
        # Fresh halves (not views) so that evicting one frees its memory; made before any
        # pointer changes, so a failed copy leaves the tree as it was.
        head_kv = [(k[:, :m].clone(), v[:, :m].clone()) for k, v in node.kv]
        tail_kv = [(k[:, m:].clone(), v[:, m:].clone()) for k, v in node.kv]
        head = _Node(
            node.tokens[:m],
            head_kv,
            node.parent,
            {node.tokens[m]: node},
            node.last_used,
            _nbytes(head_kv),
        )
        node.parent.children[node.tokens[0]] = head
        node.tokens, node.kv, node.parent = node.tokens[m:], tail_kv, head
        node.nbytes = _nbytes(tail_kv)
        self._nodes.add(head)
        return head

    def evict(self, nbytes: int) -> int:
        """Drop least recently used leaves until `nbytes` are freed (or nothing is left).

        Returns:
            Bytes freed.
        """
        with self._lock:
            return self._evict_locked(nbytes)

    def _evict_locked(self, nbytes: int) -> int:
        freed = 0
        while freed < nbytes and self._nodes:
            leaf = min((x for x in self._nodes if not x.children), key=lambda x: x.last_used)
            freed += self._remove(leaf)
        return freed

    def _remove(self, node: _Node) -> int:
        """Unlink `node` and its subtree; returns the bytes freed."""
        assert node.parent is not None
        if node.parent.children.get(node.tokens[0]) is node:
            del node.parent.children[node.tokens[0]]
        freed, stack = 0, [node]
        while stack:
            x = stack.pop()
            stack.extend(x.children.values())
            if x in self._nodes:
                self._nodes.discard(x)
                freed += x.nbytes
                self._bytes -= x.nbytes
                self._tokens -= len(x.tokens)
                self.stats.evicted_tokens += len(x.tokens)
        return freed

    def discard(self, match: PrefixMatch) -> None:
        """Drop what `match` found (and everything cached after it): for a request that failed
        after reusing it, in case the cached K/V had a part in the failure."""
        with self._lock:
            for node in match._path:
                if node in self._nodes:
                    self._remove(node)
                    break  # the rest of the path was in its subtree

    def clear(self) -> None:
        """Drop everything and reset the counters (after changing the model's weights, say)."""
        with self._lock:
            self._root.children.clear()
            self._nodes.clear()
            self._bytes = self._tokens = 0
            self.stats = PrefixCacheStats()


def load_prefixes(
    store: PrefixCache, model: Any, cache: Any, prompts: Sequence[Sequence[int]]
) -> tuple[int, list[PrefixMatch]]:
    """Copy the cached prefixes of a left-padded batch into its cache.

    Row `r`'s prompt fills slots `[start_r, T)` (`start_r = T - len_r`); with `p_r` of it
    cached, the batch prefills from `s = min_r(start_r + p_r)`, i.e. the widest new suffix:
    every row has its slots below `s` either cached (copied here) or padding (zeros, masked
    out), and rows with more cached than that recompute a few tokens they did not need to.

    Args:
        store: The prefix cache.
        model: The causal LM (for the cache's shapes).
        cache: The batch's static cache, empty.
        prompts: The batch's prompts.

    Returns:
        `s`, the first slot to prefill (0: nothing reused), and each row's match.
    """
    longest = max(map(len, prompts))
    matches = [store.match(p, limit=len(p) - 1) for p in prompts]
    s = min(longest - len(p) + m.length for p, m in zip(prompts, matches, strict=True))
    if s > 0:
        layers = allocate_static_cache(cache, model, len(prompts))
        for r, (p, m) in enumerate(zip(prompts, matches, strict=True)):
            start = longest - len(p)
            if s > start:
                m.copy_into(layers, r, start, s - start)
    for p in prompts:
        store.record(len(p), max(0, s - (longest - len(p))))
    return s, matches


def keep_sequences(
    store: PrefixCache, cache: Any, rows: Sequence[tuple[int, Sequence[int]] | None]
) -> None:
    """Insert finished rows of a batch: their tokens and, from the batch cache, their K/V.

    Args:
        store: The prefix cache.
        cache: The batch's static cache after generation.
        rows: Per row, `(slot of its first token, tokens)` where the tokens are the prompt and
            the generated tokens fed back to the model (those whose K/V is in the cache); None
            keeps nothing of that row.
    """
    layers = static_cache_tensors(cache)
    for r, row in enumerate(rows):
        if row is None:
            continue
        start, seq = row

        def read(a: int, b: int, r: int = r, start: int = start) -> KV:
            return [
                (k[r, :, start + a : start + b].clone(), v[r, :, start + a : start + b].clone())
                for k, v in layers
            ]

        store.insert(seq, read)
