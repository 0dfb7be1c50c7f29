"""One test's lifecycle coverage, read from its recorder: which hook calls executions made,
in which mode (no pytest).

An override *ran for an execution* when Celery called it while running the task: the
hook call is recorded between that execution's ``task_prerun`` and ``task_postrun`` in
the same thread (or process), or, outside them and outside the test's own thread, carries
the id of an execution of the task seen in the test (Celery 5.7 runs a hard time limit's
``on_failure`` in a thread of the worker's parent process).  A test calling
``task.on_retry(...)`` itself makes no execution retry: that call does not count.

The records are read once, when the test ends (and before ``clear()`` forgets them),
in one pass over the recorder's raw log: nothing is added to the recording itself.
"""

from __future__ import annotations

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
        self._executions: dict[str, tuple[str, str]] = {}  # task id -> (task name, mode)

    def read(self, recorder: HookRecorder) -> None:
        """Count the events recorded since the last read."""
        log = recorder.raw[self._read :]
        end = len(log) - len(log) % RECORD_SIZE
        self._read += end
        hooks, running, executions = self.hooks, self._running, recorder.executions
        outside: list[tuple[Any, ...]] = []
        step = RECORD_SIZE
        # One pass, the hot case first: a hook call inside an execution.
        for name, key, third, fourth, thread in zip(
            log[0:end:step], log[1:end:step], log[2:end:step], log[3:end:step],
            log[5:end:step], strict=True,
        ):  # fmt: skip
            if name in HOOK_PARAMS:
                stack = running.get(thread)
                if stack:
                    counted = (key, name, stack[-1])
                    hooks[counted] = hooks.get(counted, 0) + 1
                elif thread is not self.test_thread:
                    outside.append((name, key, third, fourth))
            elif name == "task_prerun":
                task_name = key if isinstance(key, str) else str(getattr(key, "name", "") or "")
                if isinstance(thread, tuple):
                    mode = PREFORK
                else:
                    info = executions.get(str(third))
                    mode = WORKER if info is not None and not info.eager else EAGER
                running.setdefault(thread, []).append(mode)
                self._executions[str(third)] = (task_name, mode)
                self.ran.add(task_name)
            elif name == "task_postrun":
                stack = running.get(thread)
                if stack:
                    stack.pop()
            elif name == COOPERATION:
                stack = running.get(thread)
                if stack:
                    self._cooperated(key, fourth, stack[-1])
                elif thread is not self.test_thread:
                    outside.append((name, key, third, fourth))
            elif name == OVERRIDE_RAN:
                stack = running.get(thread)
                if stack:  # a test calling task.run() itself is not an execution
                    counted_run = (key, third, fourth, stack[-1])
                    self.overrides[counted_run] = self.overrides.get(counted_run, 0) + 1
        for event in outside:
            self._outside(*event)

    def read_before_clear(self, recorder: HookRecorder) -> None:
        """Count what ``recorder`` has before its ``clear()``, then read its log from the
        start again (a :attr:`HookRecorder.before_clear` callback)."""
        self.read(recorder)
        self._read = 0

    def _cooperated(self, task_name: str, detail: tuple[Any, ...], mode: str) -> None:
        hook, chain, ran = detail
        counted = (task_name, hook, mode, tuple(chain), tuple(ran))
        self.cooperation[counted] = self.cooperation.get(counted, 0) + 1

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
        known = self._executions.get(str(task_id))
        if known is None or known[0] != task_name:
            return
        if name == COOPERATION:
            self._cooperated(task_name, fourth, known[1])
        else:
            counted = (task_name, name, known[1])
            self.hooks[counted] = self.hooks.get(counted, 0) + 1
