"""Bulk work without the cyclic garbage collector.

A month's report is ~300,000 small dicts and lists, none of them in a reference cycle. While they
are being built CPython's collector keeps re-scanning every live container (each full collection
walks the whole growing heap): measured on the 10,000-person benchmark it was about two thirds of
the rule engine's CPU time (4.2-5.3 s with the collector, 1.6 s without). Reference counting still
frees everything; the collector resumes at the end and catches any cycle then.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic collector for the block (nestable, thread-safe: the process-wide switch
    is restored when the outermost block ends, to what it was before)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def settle() -> None:
    """After building a large structure kept for the process's life (the console's kept rows: ~1 M
    containers for a month of an agency): one full collection, then everything alive moved out of
    the collector's reach (``gc.freeze``). Otherwise every later full collection walks them again —
    0.4-0.8 s each, one every few requests of such a page. Kept structures hold no reference
    cycles: reference counting frees them when they are dropped. Run rarely (a large
    recomputation): what is alive then stays out of cycle collection."""
    gc.collect()
    gc.freeze()
