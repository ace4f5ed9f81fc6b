"""Start-up with the cyclic garbage collector paused.

A start builds some 300,000 long-lived objects (the plugins' modules and tables, some 450
route handlers with their signature models) and almost no garbage: the collector's
passes over them found nothing to free but cost about a quarter of a start's CPU
(``bench/startup.py``, docs/performance.md). The ``kabinet`` command pauses the collector
before it builds the host; :meth:`kabinet.host.Host.startup` resumes it once the portal
is ready, after moving everything built so far out of the collector's sight
(:func:`gc.freeze`), so that later passes (every request's garbage) no longer walk the
start-up's objects either. Only the ``kabinet`` command pauses: a program that builds a
host itself (tests, an embedding) keeps its collector as it is, and :func:`resume` then
does nothing.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Pause the collector for the start (only where it runs)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Freeze what the start built and run the collector again, if :func:`pause` paused it."""
    global _paused
    if not _paused:
        return
    _paused = False
    gc.freeze()
    gc.enable()


def paused() -> bool:
    return _paused
