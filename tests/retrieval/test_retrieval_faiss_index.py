"""The FAISS index: exact results, add / upsert / delete by id, filters, crash-safe saves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import glm_agent.retrieval.faiss_index as faiss_index
from glm_agent.exceptions import UserError
from glm_agent.retrieval import FaissIndex, choose_index_kind, normalize, write_atomic

ROOT = Path(__file__).resolve().parents[2]


def data(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    return normalize(np.random.default_rng(seed).standard_normal((n, d)))


def exact(xb: np.ndarray, ids: np.ndarray, xq: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(xq @ xb.T), axis=1, kind="stable")[:, :k]]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_matches_brute_force(kind: str) -> None:
    xb, xq = data(3000), data(20, seed=1)
    ids = np.arange(3000, dtype=np.int64) * 7 + 5
    index = FaissIndex(32, kind=kind, device="cpu")
    index.add(xb, ids)
    D, I = index.search(xq, 10)  # noqa: E741
    gt = exact(xb, ids, xq, 10)
    recall = np.mean([len(set(I[i]) & set(gt[i])) / 10 for i in range(20)])
    assert recall == 1.0 if kind == "flat" else recall > 0.9
    np.testing.assert_allclose(D[:, 0], np.max(xq @ xb.T, axis=1), rtol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_delete_upsert_and_filters(kind: str) -> None:
    xb = data(500)
    index = FaissIndex(32, kind=kind, device="cpu")
    index.add(xb, np.arange(500))
    assert index.delete([3, 4, 999]) == 2
    assert index.ntotal == 498
    _, I = index.search(xb[3:5], 5)  # noqa: E741
    assert 3 not in I and 4 not in I
    index.upsert(xb[10:11], [3])  # id 3 now holds vector 10
    index.upsert(xb[11:12], [10])  # and id 10 vector 11
    _, I = index.search(xb[10:11], 2)  # noqa: E741
    assert I[0, 0] == 3 and index.ntotal == 499
    _, I = index.search(xb[0:1], 3, allowed=[7, 8, 4])  # noqa: E741
    assert set(I[0].tolist()) == {7, 8, -1}  # 4 was deleted
    assert sorted(index.ids().tolist()) == sorted({*range(500)} - {4})
    with pytest.raises(UserError, match=r"shape \[n, 32\]"):
        index.add(np.zeros((2, 8)), [1000, 1001])


def test_ivfpq_and_auto_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    xb = data(12_000, d=16)
    ivf = FaissIndex(16, kind="ivfpq", device="cpu", nprobe=64)
    ivf.add(xb[:100], np.arange(100))
    assert ivf.current_kind == "flat"  # too few vectors to train yet
    ivf.add(xb[100:], np.arange(100, 12_000))
    assert ivf.current_kind == "ivfpq" and ivf.ntotal == 12_000
    _, I = ivf.search(xb[:50], 10)  # noqa: E741
    assert np.mean(I[:, 0] == np.arange(50)) > 0.8
    ivf.delete([0])
    assert 0 not in ivf.search(xb[:1], 5)[1]

    monkeypatch.setattr(faiss_index, "HNSW_MIN_VECTORS", 1000)
    assert choose_index_kind(999) == "flat" and choose_index_kind(1000) == "hnsw"
    auto = FaissIndex(16, device="cpu")
    auto.add(xb[:999], np.arange(999))
    assert auto.current_kind == "flat"
    auto.add(xb[999:1500], np.arange(999, 1500))
    assert auto.current_kind == "hnsw" and auto.ntotal == 1500
    assert auto.search(xb[1200:1201], 1)[1][0, 0] == 1200


def test_save_load_roundtrip(tmp_path: Path) -> None:
    xb = data(300)
    for kind in ("flat", "hnsw"):
        index = FaissIndex(32, kind=kind, device="cpu")
        index.add(xb, np.arange(300))
        index.delete([5])
        index.save(tmp_path / f"{kind}.faiss")
        back = FaissIndex.load(tmp_path / f"{kind}.faiss", device="cpu")
        assert back.ntotal == 299 and back.current_kind == kind
        np.testing.assert_array_equal(back.search(xb[:5], 3)[1], index.search(xb[:5], 3)[1])


def test_failed_write_leaves_the_last_good_file(tmp_path: Path) -> None:
    path = tmp_path / "index.faiss"
    good = FaissIndex(32, device="cpu")
    good.add(data(50), np.arange(50))
    good.save(path)

    def pieces() -> Iterator[bytes]:
        body = FaissIndex(32, device="cpu").to_bytes()
        yield body[: len(body) // 2]  # half of a new index is on disk when the write fails
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, pieces())
    loaded = FaissIndex.load(path, device="cpu")
    assert loaded.ntotal == 50
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


SAVER = """
import sys, numpy as np
from glm_agent.retrieval import FaissIndex
path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(n)
index = FaissIndex(64, kind="flat", device="cpu")
index.add(rng.standard_normal((n, 64)).astype("float32"), np.arange(n))
print("ready", flush=True)
while True:
    index.save(path)
"""


def test_kill_mid_save_leaves_a_readable_index(tmp_path: Path) -> None:
    path = tmp_path / "index.faiss"
    first = FaissIndex(64, device="cpu")
    first.add(data(10, d=64), np.arange(10))
    first.save(path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path), "200000"],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)  # killed somewhere inside a 51 MB save loop
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        loaded = FaissIndex.load(path, device="cpu")
        assert loaded.ntotal in (10, 200_000)
        assert loaded.search(np.ones((1, 64), dtype=np.float32), 1)[1][0, 0] >= 0


@pytest.mark.gpu
def test_gpu_search_matches_cpu() -> None:
    import faiss

    if not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0:
        pytest.skip("faiss sees no CUDA GPU (faiss-gpu not installed or no device)")
    xb, xq = data(2000), data(10, seed=3)
    cpu = FaissIndex(32, kind="flat", device="cpu")
    gpu = FaissIndex(32, kind="flat", device="gpu")
    for index in (cpu, gpu):
        index.add(xb, np.arange(2000))
    np.testing.assert_array_equal(gpu.search(xq, 5)[1], cpu.search(xq, 5)[1])
    assert gpu._gpu() is not None
