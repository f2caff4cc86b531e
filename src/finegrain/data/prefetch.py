"""Prepare the next batches in a background thread while the current one trains (``--workers 0``).

With no loader worker processes, batches were made between steps, in series with the compute. A thread overlaps
the two without a second process: the compute's kernels and OpenCV's augmentations release the GIL, so both
run at once, and there is no worker process to compete with the compute threads for the cores (on 2 cores a
worker process cost more than it gave, bench/README). The order of batches, and every random draw of the data
(seeded samplers and augmentation generators), is the loader's own, so runs stay deterministic.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

_END = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher:
    """Iterates ``iterable`` in a background thread, at most ``depth`` items ahead of the consumer."""

    def __init__(self, iterable: Iterable[Any], depth: int = 2):
        self.iterable, self.depth = iterable, depth

    def __len__(self) -> int:
        return len(self.iterable)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        items: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():  # a consumer that stopped early must not leave this thread blocked forever
                try:
                    items.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def fill() -> None:
            try:
                for item in self.iterable:
                    if not put(item):
                        return
                put(_END)
            except BaseException as e:  # handed to the consumer, which raises it where it would have been raised
                put(_Failed(e))

        thread = threading.Thread(target=fill, name="finegrain-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                item = items.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            stop.set()
            thread.join()
