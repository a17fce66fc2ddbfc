"""The GUI thread's collector keeps CPython's schedule without listing the oldest generation,
and what the imports made is frozen out of full collections, never garbage."""

from __future__ import annotations

import gc
import sys

import pytest

from explorer import collector


class _Marked:
    freed = 0

    def __del__(self):
        _Marked.freed += 1


@pytest.fixture
def tick_collector(qapp, monkeypatch):
    """A collector whose timer does not run (its ticks are called by the test), thresholds
    that make every tick due, and CPython's own collection left as it was afterwards."""
    was_enabled, thresholds = gc.isenabled(), gc.get_threshold()
    c = collector._Collector(qapp)
    gc.disable()  # as the collector's start does, but no timer: the test ticks
    gc.set_threshold(1, 1, 1)
    yield c
    gc.set_threshold(*thresholds)
    (gc.enable if was_enabled else gc.disable)()
    c.deleteLater()


def test_a_put_off_full_collection_never_lists_the_oldest_generation(tick_collector, monkeypatch):
    listed = []
    real = gc.get_objects
    monkeypatch.setattr(gc, "get_objects", lambda generation=None: listed.append(generation) or real(generation))
    tick_collector._long_lived = 10**9  # so much survived the last full collection: put it off
    kept = []
    for _ in range(30):
        kept.append([[] for _ in range(50)])  # young objects that survive
        tick_collector.tick()
    assert tick_collector.collections[2] == 0
    assert tick_collector.collections[0] + tick_collector.collections[1] > 0
    assert 2 not in listed  # 20 ms with torch loaded, on every tick, before
    assert tick_collector._pending > 0  # the survivors are counted towards the next full one


def test_a_full_collection_comes_once_a_quarter_more_has_survived(tick_collector):
    tick_collector._long_lived = 1000
    tick_collector._pending = 100
    kept = [[[] for _ in range(10)] for _ in range(5)]
    for _ in range(20):
        tick_collector.tick()
        if tick_collector.collections[2]:
            break
        kept.append([[] for _ in range(100)])
    assert tick_collector.collections[2] == 1  # reached 250 pending of 1000 long-lived
    assert tick_collector._pending == 0  # counted again from the full collection
    assert tick_collector._long_lived == len(gc.get_objects(generation=2))


def test_freezing_frees_the_garbage_first_and_later_cycles_are_still_collected():
    was_frozen = gc.get_freeze_count()
    try:
        _Marked.freed = 0
        a, b = _Marked(), _Marked()
        a.other, b.other = b, a
        del a, b  # garbage in a cycle when the app freezes: freed, not kept for good
        collector.freeze_permanent()
        assert _Marked.freed == 2
        assert gc.get_freeze_count() > was_frozen
        c, d = _Marked(), _Marked()
        c.other, d.other = d, c
        del c, d
        gc.collect()
        assert _Marked.freed == 4  # made after the freeze: collected as before
    finally:
        gc.unfreeze()  # the rest of the suite runs as before


def test_a_large_import_is_frozen_after_the_next_full_collection(tick_collector, monkeypatch):
    try:
        monkeypatch.setattr(collector, "_frozen_at_modules", len(sys.modules) - collector.REFREEZE_MODULES)
        tick_collector.full_collection_done()
        assert gc.get_freeze_count() > 0
        assert collector._frozen_at_modules == len(sys.modules)
        gc.unfreeze()
        tick_collector.full_collection_done()  # no new modules since: nothing frozen
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
