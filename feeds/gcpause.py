"""Pausing Python's cyclic garbage collector while a large, long-lived heap is built.

Loading the cache, the articles, the catalog and the plan allocates a few
objects per post that all live to the end of the build; the collector's
full passes over them find nothing to free and cost a third of a one-post
rebuild at 10,000 posts. Reference counting still frees everything that
is not part of a cycle, and the collector runs again when the block ends.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
