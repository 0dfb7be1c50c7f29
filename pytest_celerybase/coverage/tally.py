"""One test's lifecycle coverage, read from its recorder: which hook calls executions made,
in which mode (no pytest).

An override *ran for an execution* when Celery called it while running the task: the
hook call is recorded between that execution's ``task_prerun`` and ``task_postrun`` in
the same thread (or process), or, outside them and outside the test's own thread, carries
the id of a worker's execution seen in the test (Celery 5.7 runs a hard time limit's
``on_failure`` in a thread of the prefork worker's parent process).  A test calling
``task.on_retry(...)`` itself makes no execution retry: that call does not count.

The records are read when the test ends (and before ``clear()`` forgets them), from the
recorder's raw log: nothing is added to the recording itself.  The common case (one
thread, eager executions) is counted with C-level passes over the log, anything else one
event at a time; both count the same (``tests/coverage/test_tally_unit.py``).
"""

from __future__ import annotations

from collections import Counter
from itertools import accumulate, compress, repeat
from operator import not_
from typing import TYPE_CHECKING, Any

from pytest_celerybase.recorder.records import (
    COOPERATION,
    HOOK_PARAMS,
    OVERRIDE_RAN,
    RECORD_SIZE,
    HookCall,
)

if TYPE_CHECKING:
    from pytest_celerybase.recorder.hook_recorder import HookRecorder

__all__ = ["EAGER", "MODES", "PREFORK", "WORKER", "TestTally"]

#: How an execution ran: Celery's eager tracer; the worker's tracer in this process (a
#: live worker's thread, or ``sent_tasks.run()``); a prefork worker's child process.
EAGER, WORKER, PREFORK = "eager", "worker", "prefork"
MODES: tuple[str, ...] = (EAGER, WORKER, PREFORK)

_HOOK_SET = frozenset(HOOK_PARAMS)
_FEW = 32 * RECORD_SIZE  # items of the log: about five eager calls
# What a prerun/postrun does to the number of executions running in a thread.
_DEPTH = {"task_prerun": 1, "task_postrun": -1}
# Events that count only inside an execution; the notes among them.
_NOTES = frozenset((COOPERATION, OVERRIDE_RAN))
_COUNTED = _HOOK_SET | _NOTES
# Where each hook takes the task id among its positional arguments.
_TASK_ID_AT = {hook: params.index("task_id") for hook, params in HOOK_PARAMS.items()}


class TestTally:
    """What one test's executions ran, keyed by task name and mode.

    * :attr:`hooks`: (task name, hook, mode) -> calls made for executions;
    * :attr:`cooperation`: (task name, hook, mode, overriding classes, those that ran) ->
      calls, for task classes with two or more overrides of the hook;
    * :attr:`overrides`: (task name, "module.Class", method, mode) -> runs of a base
      class's ``__call__``/``run``;
    * :attr:`ran`: names of the tasks executed.
    """

    __test__ = False  # not a test class, whatever pytest's naming rules say

    def __init__(self, test_thread: Any = None) -> None:
        #: The thread running the test: what it calls outside an execution is its own call.
        self.test_thread = test_thread
        self.hooks: dict[tuple[str, str, str], int] = {}
        self.cooperation: dict[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], int] = {}
        self.overrides: dict[tuple[str, str, str, str], int] = {}
        self.ran: set[str] = set()
        self._read = 0  # items of the recorder's raw log read so far
        # thread (or (thread name, pid) of a worker child) -> modes of the executions
        # running in it, innermost last
        self._running: dict[Any, list[str]] = {}
        self._executions: dict[Any, str] = {}  # task id -> mode, of a worker's runs

    def read(self, recorder: HookRecorder) -> None:
        """Count the events recorded since the last read."""
        # Only the columns needed are sliced out of the log (never the whole log: copying
        # it touches every argument tuple a hook was called with, most of the cost).
        raw, start = recorder.raw, self._read
        end = len(raw)
        end -= (end - start) % RECORD_SIZE
        self._read = end
        # A test's few events are counted faster one by one than in passes.
        if end - start < _FEW or not self._read_one_thread(raw, start, end, recorder):
            self._read_events(raw, start, end, recorder)

    def _read_one_thread(
        self, raw: list[Any], start: int, end: int, recorder: HookRecorder
    ) -> bool:
        """The common case, counted with C-level passes over the log (a Python loop per
        event would cost about 1 % of an eager call): every event from one thread of this
        process, every execution eager, every hook call inside one.  ``False`` (nothing
        counted) when the case is another: :meth:`_read_events` counts it then."""
        step = RECORD_SIZE
        threads = raw[start + 5 : end : step]
        thread = threads[0]
        if isinstance(thread, tuple) or threads.count(thread) != len(threads):
            return False
        running = self._running.get(thread, [])
        if any(mode != EAGER for mode in running) or any(
            not info.eager for info in list(recorder.executions.values())
        ):
            return False  # a worker's tracer ran (here or in another thread)
        names = raw[start:end:step]
        # +1 at a task_prerun, -1 at a task_postrun; then the executions running after
        # each event, those of earlier reads included.
        depths = list(accumulate(map(_DEPTH.get, names, repeat(0)), initial=len(running)))
        del depths[0]
        if min(depths) < 0 or not _COUNTED.isdisjoint(compress(names, map(not_, depths))):
            return False  # a hook called outside any execution: see which, one by one
        keys = raw[start + 1 : end : step]
        # Task names (of hooks, of some signals) and tasks (tracer signals as sent).
        task_names = [key for key in set(keys) if type(key) is str]
        present = set(names)
        if len(task_names) == 1:  # hooks of one task: count each hook's name
            for hook in _HOOK_SET & present:
                _add(self.hooks, (task_names[0], hook, EAGER), names.count(hook))
        else:
            hooks = map(_HOOK_SET.__contains__, names)
            pairs = Counter(compress(zip(keys, names, strict=True), hooks))
            for (task_name, hook), n in pairs.items():
                _add(self.hooks, (task_name, hook, EAGER), n)
        if not _NOTES.isdisjoint(present):
            for at in compress(range(start, end, step), map(_NOTES.__contains__, names)):
                if raw[at] == COOPERATION:
                    self._cooperated(raw[at + 1], raw[at + 3], EAGER)
                else:
                    self._override_ran(raw[at + 1], raw[at + 2], raw[at + 3], EAGER)
        # Every execution calls before_start (recording makes every hook "custom" for
        # Celery's tracer): the tasks that ran are those with hook calls.
        self.ran.update(task for task, _, _ in self.hooks)
        self._running[thread] = [EAGER] * depths[-1]
        return True

    def _read_events(self, raw: list[Any], start: int, end: int, recorder: HookRecorder) -> None:
        """Any case, one event at a time."""
        hooks, running, executions = self.hooks, self._running, recorder.executions
        outside: list[tuple[Any, ...]] = []
        step = RECORD_SIZE
        # One pass, the hot case first: a hook call inside an execution.
        for at, name, key, thread in zip(
            range(start, end, step), raw[start:end:step], raw[start + 1 : end : step],
            raw[start + 5 : end : step], strict=True,
        ):  # fmt: skip
            if name in HOOK_PARAMS:
                stack = running.get(thread)
                if stack:
                    counted = (key, name, stack[-1])  # (inlined: the common case)
                    hooks[counted] = hooks.get(counted, 0) + 1
                elif thread is not self.test_thread:
                    outside.append((name, key, raw[at + 2], raw[at + 3]))
            elif name == "task_prerun":
                task_id = raw[at + 2]
                if isinstance(thread, tuple):
                    mode = PREFORK
                else:
                    info = executions.get(str(task_id))
                    mode = WORKER if info is not None and not info.eager else EAGER
                running.setdefault(thread, []).append(mode)
                if mode != EAGER:  # an eager run calls its hooks in its own thread
                    self._executions[task_id] = mode
                self.ran.add(_task_name(key))
            elif name == "task_postrun":
                stack = running.get(thread)
                if stack:
                    stack.pop()
            elif name == COOPERATION:
                stack = running.get(thread)
                if stack:
                    self._cooperated(key, raw[at + 3], stack[-1])
                elif thread is not self.test_thread:
                    outside.append((name, key, raw[at + 2], raw[at + 3]))
            elif name == OVERRIDE_RAN:
                stack = running.get(thread)
                if stack:  # a test calling task.run() itself is not an execution
                    self._override_ran(key, raw[at + 2], raw[at + 3], stack[-1])
        for event in outside:
            self._outside(*event)

    def read_before_clear(self, recorder: HookRecorder) -> None:
        """Count what ``recorder`` has before its ``clear()``, then read its log from the
        start again (a :attr:`HookRecorder.before_clear` callback)."""
        self.read(recorder)
        self._read = 0

    def _override_ran(self, task_name: str, key: str, method: str, mode: str) -> None:
        _add(self.overrides, (task_name, key, method, mode), 1)

    def _cooperated(self, task_name: str, detail: tuple[Any, ...], mode: str) -> None:
        hook, chain, ran = detail
        _add(self.cooperation, (task_name, hook, mode, tuple(chain), tuple(ran)), 1)

    def _outside(self, name: str, task_name: str, third: Any, fourth: Any) -> None:
        """A hook call (or cooperation note) recorded outside any execution, in a thread
        other than the test's: it counts when it carries the id of an execution of its
        task."""
        if name == COOPERATION:
            task_id = third
        elif isinstance(third, HookCall):  # built in a worker child
            task_id = third.task_id
        else:
            at = _TASK_ID_AT[name]
            task_id = third[at] if len(third) > at else (fourth or {}).get("task_id")
        mode = self._executions.get(task_id) or self._executions.get(str(task_id))
        if mode is None:
            return
        if name == COOPERATION:
            self._cooperated(task_name, fourth, mode)
        else:
            _add(self.hooks, (task_name, name, mode), 1)


def _add(counts: dict[Any, int], key: Any, n: int) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n


def _task_name(key: Any) -> str:
    """The task name of a ``task_prerun`` event: stored as sent (the task) or resolved."""
    return key if isinstance(key, str) else str(getattr(key, "name", "") or "")
