"""The prefix cache on its own: radix-tree matching, splitting, LRU eviction within a budget,
refusal of non-finite K/V, discarding, and concurrent use."""

from __future__ import annotations

import threading

import pytest
import torch

from glm_agent.runtime.prefix_cache import KV, PrefixCache

LAYERS, HEADS, DIM = 2, 2, 4
BYTES_PER_TOKEN = LAYERS * 2 * HEADS * DIM * 4  # float32 keys and values


def _kv_of(tokens: list[int]) -> KV:
    """K/V that encode their tokens (and layer), so a copy can be checked token by token."""
    t = torch.tensor(tokens, dtype=torch.float32)
    return [
        (
            (t + 1000 * layer)[None, :, None].expand(HEADS, -1, DIM).clone(),
            (-t - 1000 * layer)[None, :, None].expand(HEADS, -1, DIM).clone(),
        )
        for layer in range(LAYERS)
    ]


def _insert(store: PrefixCache, tokens: list[int]) -> int:
    kv = _kv_of(tokens)
    return store.insert(
        tokens, lambda a, b: [(k[:, a:b].clone(), v[:, a:b].clone()) for k, v in kv]
    )


def _copied(store: PrefixCache, tokens: list[int], limit: int | None = None) -> list[int]:
    """The tokens a match writes into a one-row cache, read back from the keys of layer 0."""
    match = store.match(tokens, limit)
    cache = [(torch.zeros(1, HEADS, 64, DIM), torch.zeros(1, HEADS, 64, DIM)) for _ in range(2)]
    match.copy_into(cache, 0, 3)
    got = cache[0][0][0, 0, 3 : 3 + match.length, 0].long().tolist()
    assert cache[1][1][0, 1, 3 : 3 + match.length, 2].long().tolist() == [-x - 1000 for x in got]
    return got


def test_longest_prefix_is_found_and_copied_token_by_token() -> None:
    store = PrefixCache(1 << 20)
    assert _insert(store, [1, 2, 3, 4, 5, 6]) == 6
    assert _copied(store, [1, 2, 3, 4, 5, 6, 7, 8]) == [1, 2, 3, 4, 5, 6]
    assert _copied(store, [1, 2, 3, 9]) == [1, 2, 3]  # diverges inside an edge
    assert _copied(store, [1, 2, 3, 4, 5, 6], limit=5) == [1, 2, 3, 4, 5]
    assert store.match([7, 1, 2]).length == 0
    assert store.match([]).length == 0


def test_shared_prefixes_are_stored_once() -> None:
    store = PrefixCache(1 << 20)
    system = list(range(100, 140))
    _insert(store, [*system, 1, 2, 3])
    assert _insert(store, [*system, 7, 8]) == 2  # only the new part is copied out
    assert store.tokens == 45 and store.bytes == 45 * BYTES_PER_TOKEN
    assert len(store) == 3  # the system prompt edge and two leaves
    assert _copied(store, [*system, 1, 2, 3, 4]) == [*system, 1, 2, 3]
    assert _copied(store, [*system, 7, 8, 9]) == [*system, 7, 8]
    assert _copied(store, [*system, 5]) == system
    assert _insert(store, [*system, 1, 2]) == 0  # already held (ends inside an edge)
    assert _insert(store, [*system, 1, 2, 3, 4]) == 1  # extends a leaf


def test_least_recently_used_leaves_go_first_within_the_budget() -> None:
    store = PrefixCache(30 * BYTES_PER_TOKEN)
    system = list(range(100, 110))
    _insert(store, [*system, *range(10)])  # session a: 20 tokens
    _insert(store, [*system, *range(20, 30)])  # session b shares the 10 system tokens: 30
    store.match([*system, *range(10)])  # a is used again: b is now the oldest
    _insert(store, [*system, *range(40, 45)])  # 35 > 30: b's leaf goes
    assert store.bytes <= store.max_bytes
    assert store.match([*system, *range(10)]).length == 20
    assert store.match([*system, *range(20, 30)]).length == 10  # only the shared part is left
    assert store.match([*system, *range(40, 45)]).length == 15
    assert store.stats.evicted_tokens == 10
    assert store.evict(1) > 0 and store.bytes < 25 * BYTES_PER_TOKEN


def test_a_sequence_larger_than_the_budget_is_not_kept() -> None:
    store = PrefixCache(10 * BYTES_PER_TOKEN)
    assert _insert(store, list(range(11))) == 0
    assert store.bytes == 0 and len(store) == 0
    assert PrefixCache(0).insert([1, 2], lambda a, b: _kv_of([1, 2])) == 0


def test_non_finite_kv_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    store = PrefixCache(1 << 20)
    _insert(store, [1, 2, 3])

    def poisoned(a: int, b: int) -> KV:
        kv = _kv_of([4, 5][: b - a])
        kv[1][0][0, 0, 0] = float("nan")
        return kv

    assert store.insert([1, 2, 3, 4, 5], poisoned) == 0
    assert store.match([1, 2, 3, 4, 5, 6]).length == 3
    assert "non-finite" in caplog.text


def test_discard_drops_the_matched_path_and_what_follows() -> None:
    store = PrefixCache(1 << 20)
    _insert(store, [1, 2, 3, 4])
    _insert(store, [1, 2, 3, 4, 5, 6])
    _insert(store, [8, 9])
    match = store.match([1, 2, 3, 4, 5, 6, 7])
    assert match.length == 6
    store.discard(match)
    assert store.match([1, 2, 3, 4, 5, 6]).length == 0
    assert store.match([8, 9, 10]).length == 2  # another prefix is untouched
    assert store.tokens == 2 and store.bytes == 2 * BYTES_PER_TOKEN
    store.discard(match)  # twice is harmless
    store.clear()
    assert store.tokens == 0 and store.stats.inserted_tokens == 0


def test_a_match_stays_valid_after_its_nodes_are_evicted() -> None:
    store = PrefixCache(1 << 20)
    _insert(store, [5, 6, 7])
    match = store.match([5, 6, 7, 8])
    store.evict(1 << 20)
    assert store.tokens == 0
    cache = [(torch.zeros(1, HEADS, 8, DIM), torch.zeros(1, HEADS, 8, DIM)) for _ in range(2)]
    match.copy_into(cache, 0, 0)
    assert cache[0][0][0, 0, :3, 0].tolist() == [5.0, 6.0, 7.0]


def test_concurrent_inserts_and_matches_keep_the_tree_consistent() -> None:
    store = PrefixCache(200 * BYTES_PER_TOKEN)
    system = list(range(1000, 1030))
    errors: list[BaseException] = []

    def session(n: int) -> None:
        try:
            history = [*system, 10_000 + n]
            for step in range(15):
                history += [n * 100 + step, 7]
                _insert(store, history)
                got = _copied(store, [*history, 1])
                assert got == history[: len(got)]
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert store.bytes <= store.max_bytes
    assert store.bytes == store.tokens * BYTES_PER_TOKEN
