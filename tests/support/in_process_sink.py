"""The product's sink in the test process: joined with the tests' short group session, run in
a thread and stopped on leaving a block, or made to die before it commits."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

from govpulse.sinks.sink import Sink as ProductSink
from tests.support.pipeline import SESSION_TIMEOUT_MS


class Sink(ProductSink):
    """The product's sink, joining its groups with the tests' shorter session (FAST_GROUPS)."""

    def __init__(self, *args, session_timeout_ms: int = SESSION_TIMEOUT_MS, **kwargs) -> None:
        super().__init__(*args, session_timeout_ms=session_timeout_ms, **kwargs)


class SinkThatNeverCommits(Sink):
    """A sink that inserts and then dies before committing: its stored batches are dropped."""

    def _collect(self) -> int:
        with contextlib.suppress(queue.Empty):
            while True:
                self.writer.outbox.get_nowait()
        if not self.writer.busy:
            self._in_flight = 0
        return 0


S = TypeVar("S", bound=ProductSink)


@contextlib.contextmanager
def running(sink: S) -> Iterator[S]:
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive()
