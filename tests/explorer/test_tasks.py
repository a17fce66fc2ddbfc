"""The task idiom: signal order, the one error path, cancel, and who keeps a task alive."""

from __future__ import annotations

import gc
import threading

import pytest
from PySide6.QtCore import QObject, QThread, Slot

from explorer import tasks
from explorer.tasks import Cancelled, Task, TaskState, TaskStatus
from models.errors import DataError


class Recorder(QObject):
    def __init__(self, task: Task) -> None:
        super().__init__()
        self.events: list = []
        self.threads: set = set()
        for name in ("started", "progress", "partial", "result", "error", "cancelled", "finished"):
            getattr(task, name).connect(getattr(self, "on_" + name))

    def _note(self, *event):
        self.threads.add(QThread.currentThread() is self.thread())
        self.events.append(event)

    @Slot()
    def on_started(self):
        self._note("started")

    @Slot(int, int)
    def on_progress(self, done, total):
        self._note("progress", done, total)

    @Slot(object)
    def on_partial(self, value):
        self._note("partial", value)

    @Slot(object)
    def on_result(self, value):
        self._note("result", value)

    @Slot(str)
    def on_error(self, line):
        self._note("error", line)

    @Slot()
    def on_cancelled(self):
        self._note("cancelled")

    @Slot(object)
    def on_finished(self, status):
        self._note("finished", status)


def run(qtbot, fn, *args):
    task = Task("test", fn, *args)
    rec = Recorder(task)
    task.start()
    qtbot.waitUntil(lambda: task.status.done and rec.events and rec.events[-1][0] == "finished",
                    timeout=10_000)
    assert rec.threads == {True}, "a slot ran off the GUI thread"
    return task, rec.events


def test_signals_come_in_order_on_the_gui_thread(qtbot):
    seen = []

    def work(state: TaskState, n: int) -> int:
        seen.append(threading.current_thread() is not threading.main_thread())
        for i in range(n):
            state.set_progress(i + 1, n)
            state.set_partial_result(i)
        return n * 10

    task, events = run(qtbot, work, 3)
    assert seen == [True]  # the function ran in another thread
    assert events == [("started",), ("progress", 1, 3), ("partial", 0), ("progress", 2, 3),
                      ("partial", 1), ("progress", 3, 3), ("partial", 2), ("result", 30),
                      ("finished", TaskStatus.FINISHED)]
    assert task.status is TaskStatus.FINISHED and task.value == 30


def test_our_errors_are_their_own_line(qtbot):
    def work(state):
        raise DataError("data.h5: no such file")

    task, events = run(qtbot, work)
    assert events[-2:] == [("error", "data.h5: no such file"), ("finished", TaskStatus.FAILED)]
    assert task.error_line == "data.h5: no such file"


def test_a_bug_is_one_line_too_and_its_traceback_goes_to_stderr(qtbot, capsys):
    def work(state):
        return {}["missing"]

    task, events = run(qtbot, work)
    assert events[-2] == ("error", "KeyError: 'missing'")
    assert task.status is TaskStatus.FAILED
    assert "Traceback" in capsys.readouterr().err


def test_out_of_memory_says_what_to_try(qtbot):
    def work(state):
        raise MemoryError()

    _task, events = run(qtbot, work)
    assert events[-2][0] == "error" and "smaller" in events[-2][1]


def test_cancel_is_seen_between_steps_and_calls_the_callbacks(qtbot):
    stopped = threading.Event()
    registered = threading.Event()
    go = threading.Event()

    def work(state):
        state.on_interruption(stopped.set)
        registered.set()
        go.wait(5)
        for _ in range(100):
            state.raise_if_interrupted()
            state.wait(0.01)
        return "not cancelled"

    task = Task("test", work)
    rec = Recorder(task)
    task.start()
    assert registered.wait(5)
    task.cancel()
    assert stopped.is_set()  # the callback ran at once, on the cancelling thread
    go.set()
    qtbot.waitUntil(lambda: task.status.done, timeout=10_000)
    qtbot.waitUntil(lambda: rec.events[-1][0] == "finished", timeout=1000)
    assert rec.events[-2:] == [("cancelled",), ("finished", TaskStatus.CANCELLED)]
    task.cancel()  # harmless once it has ended


def test_a_callback_registered_after_the_cancel_runs_at_once():
    state = TaskState()
    state.request_interruption()
    hits = []
    state.on_interruption(lambda: hits.append(1))
    assert hits == [1] and state.is_interruption_requested()
    with pytest.raises(Cancelled):
        state.raise_if_interrupted()


def test_a_task_nobody_holds_lives_until_it_has_delivered(qtbot):
    results = []

    class Sink(QObject):
        @Slot(object)
        def take(self, value):
            results.append(value)

    sink = Sink()
    task = Task("orphan", lambda state: "done")
    task.result.connect(sink.take)
    task.start()
    del task
    gc.collect()
    qtbot.waitUntil(lambda: results == ["done"], timeout=10_000)
    qtbot.waitUntil(lambda: not tasks.live_tasks(), timeout=5000)  # released after finished


def test_wait_delivers_what_the_thread_left(qtbot):
    task = Task("wait", lambda state: (state.set_partial_result(1), 2)[1])
    rec = Recorder(task)
    task.start()
    assert task.wait(10_000)
    assert rec.events == [("started",), ("partial", 1), ("result", 2),
                          ("finished", TaskStatus.FINISHED)]
    assert task.wait(10)  # and again: nothing more


def test_a_task_starts_once(qtbot):
    task = Task("once", lambda state: None).start()
    with pytest.raises(RuntimeError):
        task.start()
    task.wait()


def test_many_short_tasks_in_a_row(qtbot):
    """The crash of issue 11 in miniature: hundreds of threads ending while the next start."""
    done = []

    class Chain(QObject):
        @Slot(object)
        def next(self, _status):
            done.append(1)
            if len(done) < 300:
                t = Task("chain", lambda state, i: i, len(done))
                t.finished.connect(self.next)
                t.start()

    chain = Chain()
    for _ in range(3):
        t = Task("chain", lambda state, i: i, 0)
        t.finished.connect(chain.next)
        t.start()
    qtbot.waitUntil(lambda: len(done) >= 302, timeout=60_000)
    qtbot.waitUntil(lambda: not tasks.live_tasks(), timeout=10_000)


class _Marked:
    """Notes the thread that frees it."""

    freed_on: list = []

    def __del__(self):
        _Marked.freed_on.append(threading.get_ident())


def test_cycles_made_in_a_task_thread_are_collected_on_the_gui_thread(qtbot):
    # A widget in a reference cycle that CPython collects in a task thread loses its wrapper
    # there (the deadlock seen once in the stress test): collection belongs to the GUI thread.
    from explorer import collector

    def work(state):
        kept = []  # new containers that stay: each 700 pass generation 0's threshold
        for _ in range(20):
            a, b = _Marked(), _Marked()
            a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
            del a, b
            kept.append([[] for _ in range(2000)])
        return gc.isenabled(), kept  # kept past the task: the GUI thread's timer sees them

    _Marked.freed_on = []
    task = Task("cycles", work)
    task.start()
    qtbot.waitUntil(lambda: task.status.done, timeout=30_000)
    assert task.value[0] is False  # automatic collection is off while tasks run
    qtbot.waitUntil(lambda: sum(collector.collections()) > 0, timeout=10_000)  # the timer's
    gc.collect()  # what reached the oldest generation waits for a full collection: now
    assert len(_Marked.freed_on) == 40
    assert set(_Marked.freed_on) == {threading.get_ident()}  # the GUI (main) thread


def test_a_full_collection_waits_as_cpython_does():
    from explorer.collector import generation_due

    assert generation_due((700, 0, 0), (700, 10, 10)) is None
    assert generation_due((701, 3, 0), (700, 10, 10)) == 0
    assert generation_due((701, 11, 3), (700, 10, 10)) == 1
    assert generation_due((701, 11, 11), (700, 10, 10)) == 2
    assert generation_due((10_000, 11, 11), (0, 10, 10)) is None  # gc.set_threshold(0): off
