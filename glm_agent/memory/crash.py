"""A durability check: kill -9 a process in the middle of a burst of appends, count lost turns.

A child process appends turns to one session from several concurrent writers and prints each
acknowledged `version turn-id` to a pipe as soon as `append` returns. The parent kills it with
SIGKILL after some acknowledgements, reopens the store and checks that every acknowledged turn is
there, at its version, whole. Run it as `python -m glm_agent.memory.crash URL`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from glm_agent.memory._open import open_store
from glm_agent.messages import UserMessage

__all__ = ["CrashReport", "crash_test"]

_TENANT = "crash-test"


@dataclass(frozen=True)
class CrashReport:
    """What one crash test found."""

    acknowledged: int
    """Appends the child saw return before it was killed."""
    stored: int
    """The session's version after reopening the store."""
    lost: int
    """Acknowledged turns missing or different after the crash (must be 0)."""
    seconds: float
    """Wall time of the burst before the kill."""


async def _child(url: str, session_id: str, writers: int) -> None:
    store = open_store(url)
    out = sys.stdout

    async def writer(w: int) -> None:
        i = 0
        while True:
            turn_id = f"w{w}-{i}"
            version = await store.append(_TENANT, session_id, [UserMessage(content=turn_id)])
            out.write(f"{version} {turn_id}\n")
            out.flush()
            i += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))


async def _verify(url: str, session_id: str, acks: dict[int, str]) -> tuple[int, int]:
    store = open_store(url)
    try:
        session = await store.load(_TENANT, session_id)
        await store.delete(_TENANT, session_id)
    finally:
        await store.aclose()
    if session is None:
        return 0, len(acks)
    by_version = {v + 1: m.content for v, m in enumerate(session.messages)}
    lost = sum(1 for v, turn_id in acks.items() if by_version.get(v) != turn_id)
    return session.version, lost


def crash_test(
    url: str, *, kill_after: int = 200, writers: int = 4, timeout: float = 60.0
) -> CrashReport:
    """Kill -9 a child appending to `url` after `kill_after` acknowledged appends.

    Args:
        url: The store to test (a fresh session of tenant `crash-test` is used, then deleted).
        kill_after: Acknowledgements to wait for before the kill.
        writers: Concurrent writers in the child.
        timeout: Seconds to wait for the acknowledgements.
    """
    session_id = "crash-" + uuid.uuid4().hex[:12]
    cmd = [sys.executable, "-m", "glm_agent.memory.crash", "--child", url, session_id, str(writers)]
    # The child imports this very glm_agent, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1, env=env)
    assert proc.stdout is not None
    acks: dict[int, str] = {}
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            version, turn_id = line.split()
            acks[int(version)] = turn_id
            if len(acks) >= kill_after or time.monotonic() > deadline:
                break
        os.kill(proc.pid, signal.SIGKILL)
        seconds = time.perf_counter() - start
        # Lines written before the kill are acknowledgements too.
        for line in proc.stdout:
            version, _, turn_id = line.strip().partition(" ")
            if turn_id:
                acks[int(version)] = turn_id
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the crash-test child exited with {proc.returncode} before the kill")
    stored, lost = asyncio.run(_verify(url, session_id, acks))
    return CrashReport(acknowledged=len(acks), stored=stored, lost=lost, seconds=seconds)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        asyncio.run(_child(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif len(sys.argv) == 2:
        report = crash_test(sys.argv[1])
        print(report)
        sys.exit(1 if report.lost else 0)
    else:
        sys.exit("usage: python -m glm_agent.memory.crash STORE_URL")
