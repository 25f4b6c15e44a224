"""The garbage collector of a long-running process: what lives as long as the process is taken
out of its full collections.

A full (generation 2) collection walks every tracked object. In a worker that is mostly what
the imports and the start made (modules, classes, Faust's app, pydantic and SQLAlchemy
constructs), which never become garbage: measured under a stream of 1-item requests, the worker
ran one every 1-3 s and each paused its event loop for 84-96 ms, the slowest request's time.
``gc.freeze()`` moves every object alive at that point to a permanent generation the collector
no longer walks; later garbage is collected as before.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_objects() -> None:
    """Call when the process is ready to serve: collects what the start left, then freezes the
    rest. Once per process: an app started again in the same process (tests) changes nothing."""
    global _frozen  # noqa: PLW0603 - one flag for the process, as the collector is one
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
