"""Python's cyclic garbage collector, run on the GUI thread only, while the app runs threads.

CPython collects cycles in whichever thread happens to allocate past a threshold. In this app
that is often a task thread (an encoding, an export's child watcher, a sweep's event reader).
A Qt widget caught in a reference cycle (pyqtgraph's plot items and their menus are) then loses
its wrapper there; shiboken defers the C++ deletion to the main thread, which runs it while
holding the GIL. That is how the one deadlock the stress test ever saw looked: the GUI thread in
``BindingManager::runDeletionInMainThread`` destroying a QMenu and its actions, blocked on a Qt
mutex, and the task threads waiting for the GIL. pyqtgraph's answer to the same hazard
(``pyqtgraph.util.garbage_collector``) is the one used here: automatic collection is turned off
and a GUI-thread timer collects instead, so every wrapper dies on the thread that owns it.

The timer keeps CPython's own schedule: a generation is collected when its count passes the
threshold (``gc.get_threshold()``), and a full collection also waits, as CPython's does, until
the objects that reached the oldest generation since the last one are a quarter of those that
survived it (a full collection with torch loaded takes 50-130 ms here; without that rule it
would come every ~25 s). Both figures are counted as CPython counts them, from what the young
collections leave behind, never by listing the oldest generation (``gc.get_objects(2)``: 20 ms
with torch loaded, which had been paid on every tick a full collection was put off).

When a process has imported lots of modules it has 200,000+ objects that live as long as it
does (modules, classes, functions: Qt's and torch's bindings), and a full collection spends its
100 ms walking them. :func:`freeze_permanent` moves them out of the collector's sight
(``gc.freeze``, as CPython's documentation suggests for this case), after a collection so that
no garbage is frozen: the app calls it once its modules are imported, and the timer again
after a full collection that follows a large import (the first encoding loads torch). What is
created later is collected as before.

:func:`install` is called when the app starts and when a task starts (idempotent, GUI thread);
:func:`uninstall` gives automatic collection back (engine tests that run without an event loop).
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QCoreApplication, QObject, QTimer
from shiboken6 import isValid

#: How often the GUI thread checks the collector's counts (ms).
INTERVAL_MS = 250

#: A full collection waits until the oldest generation has grown by this share since the last.
FULL_GROWTH = 0.25

#: After a full collection, what lives is frozen again if this many modules were imported since
#: the last freeze (torch is ~1,000; a plugin or two are not worth it).
REFREEZE_MODULES = 200


def generation_due(counts: tuple[int, int, int], thresholds: tuple[int, int, int]) -> int | None:
    """The generation CPython would collect now for these ``gc.get_count()`` counts, or None."""
    (c0, c1, c2), (t0, t1, t2) = counts, thresholds
    if t0 <= 0 or c0 <= t0:
        return None
    if c1 <= t1:
        return 0
    if c2 <= t2:
        return 1
    return 2


class _Collector(QObject):
    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.collections = [0, 0, 0]  # per generation, for tests
        self._long_lived = 0  # objects in the oldest generation after the last full collection
        self._pending = 0  # objects moved into it since (CPython's long_lived_pending)
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.tick)

    def start(self) -> None:
        gc.disable()
        if not self._timer.isActive():  # restarting would put the next tick off again
            self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.enable()

    def tick(self) -> None:
        generation = generation_due(gc.get_count(), gc.get_threshold())
        if generation is None:
            return
        if generation == 2 and self._pending < FULL_GROWTH * self._long_lived:
            generation = 1
        if generation == 1:
            young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
            found = gc.collect(1)
            self._pending += max(0, young - found)  # the survivors join the oldest generation
        else:
            gc.collect(generation)
        self.collections[generation] += 1
        if generation == 2:
            self.full_collection_done()

    def full_collection_done(self) -> None:
        if len(sys.modules) - _frozen_at_modules >= REFREEZE_MODULES:
            freeze_permanent(collect=False)  # just collected: nothing left to free
        self._long_lived = len(gc.get_objects(generation=2))  # once per full collection
        self._pending = 0


_COLLECTOR: _Collector | None = None
_frozen_at_modules = 0  # len(sys.modules) at the last freeze


def freeze_permanent(collect: bool = True) -> None:
    """Collect, then move every object alive now out of the collector's sight for good (see the
    module's docstring). Call when what is alive will live as long as the process does: at the
    app's start, after its imports (not from a test: what a test has open would never be freed).
    """
    global _frozen_at_modules
    if collect:
        gc.collect()
    gc.freeze()
    _frozen_at_modules = len(sys.modules)


def install() -> None:
    """Collect on the GUI thread from now on (call on the GUI thread, with a QCoreApplication)."""
    global _COLLECTOR
    app = QCoreApplication.instance()
    if app is None:
        return
    if _COLLECTOR is None or not isValid(_COLLECTOR) or _COLLECTOR.parent() is not app:
        _COLLECTOR = _Collector(app)
    _COLLECTOR.start()


def install_for_app() -> None:
    """What the app's start does (and the benchmarks that measure the app, so they measure what
    a user gets): collect on the GUI thread, and freeze what the imports made."""
    install()
    freeze_permanent()


def uninstall() -> None:
    """Give collection back to CPython (anywhere it allocates)."""
    if _COLLECTOR is not None and isValid(_COLLECTOR):
        _COLLECTOR.stop()
    else:
        gc.enable()


def collections() -> list[int]:
    """Collections run by the GUI thread so far, per generation."""
    return list(_COLLECTOR.collections) if _COLLECTOR is not None else [0, 0, 0]
