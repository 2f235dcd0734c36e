"""The one bridge from sync code to glm-agent's async core: a shared event loop in a thread.

`Agent.run`, `Agent.stream`, `ChatModel.request_sync`, `SyncSessionStore` and the CLI all run their
coroutines here. One loop for all of them keeps a sync call cheap (no new loop, executor or signal
bookkeeping per call) and lets objects that own connections (stores, HTTP pools) be used from any
thread: their connections belong to this loop.

The loop never dies silently: if its thread ends (a `SystemExit` raised inside a coroutine stops
`run_forever`), every call waiting on it fails at once with a `RuntimeError` naming the cause, and
the next call starts a new loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["iterate_sync", "run_sync"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread, restarted when it has died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._waiting: set[concurrent.futures.Future[Any]] = set()

    def _live_loop(self) -> asyncio.AbstractEventLoop:
        # Called with the lock held.
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=self._serve, args=(loop,), name="glm-agent-sync", daemon=True
            )
            self._loop, self._thread = loop, thread
            thread.start()
        return self._loop

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        cause: BaseException | None = None
        try:
            loop.run_forever()
        except BaseException as e:
            cause = e
        finally:
            with self._lock:
                if self._loop is loop:
                    self._loop = None
                waiting, self._waiting = self._waiting, set()
            error = RuntimeError(
                "glm-agent's sync event loop stopped"
                + (f": {type(cause).__name__}: {cause}" if cause is not None else "")
            )
            for future in waiting:
                if not future.done():
                    future.set_exception(error)
            try:
                for task in asyncio.all_tasks(loop):
                    task.cancel()
                loop.close()
            except Exception:  # a loop left in an odd state: nothing more to release
                pass

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        # Under the lock from the liveness check to the registration of the future: a loop that
        # dies meanwhile waits for the lock and then fails this future too.
        with self._lock:
            loop = self._live_loop()
            if running is loop:
                coro.close()
                raise RuntimeError(
                    "a sync glm-agent call was made from inside an async one; await it"
                )
            # Run in a copy of the caller's context: its context variables (the current trace
            # span, an evaluation's case) are seen by the coroutine as in a plain `await`.
            future = contextvars.copy_context().run(asyncio.run_coroutine_threadsafe, coro, loop)
            self._waiting.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._waiting.discard(future)


_LOOP = _LoopThread()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when another loop is running.

    Raises:
        RuntimeError: Called from a coroutine running on the bridge's own loop (it would wait for
            itself), or the bridge's loop died while the call waited.
    """
    return _LOOP.submit(coro).result()


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, pulling one item at a time on the shared loop.

    Nothing runs ahead of the consumer: each `next()` awaits exactly one `__anext__`. Closing the
    sync iterator early closes the async one.
    """

    async def step() -> tuple[bool, T | None]:
        try:
            return True, await agen.__anext__()
        except StopAsyncIteration:
            return False, None

    finished = False
    try:
        while True:
            more, item = run_sync(step())
            if not more:
                finished = True
                return
            yield item  # type: ignore[misc]  # `more` is True: item is a T
    finally:
        close = getattr(agen, "aclose", None)
        if not finished and close is not None:
            run_sync(close())
