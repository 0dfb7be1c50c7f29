"""The session's lifecycle coverage: every override of every task class, with its runs
(no pytest).

:class:`LifecycleCoverage` adds up the tests' :class:`~.tally.TestTally` per class of the
tasks' MRO below ``celery.Task`` (:func:`~pytest_celerybase.recorder.overrides.override_chains`),
learns the classes of the tasks registered on the project app, and travels between
processes as plain data (:meth:`~LifecycleCoverage.to_data`, :meth:`~LifecycleCoverage.merge`):
an xdist worker's counts are summed on the controller, so the result equals a serial run's.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_celerybase.recorder.overrides import CALLS, METHODS, class_key, override_chains

if TYPE_CHECKING:
    from pytest_celerybase.coverage.tally import TestTally

__all__ = ["ClassCoverage", "LifecycleCoverage", "MethodCoverage"]


@dataclass
class MethodCoverage:
    """One override: its runs per mode, and what explains it never running."""

    #: mode -> executions that ran it
    modes: dict[str, int] = field(default_factory=dict)
    #: Hook calls on tasks whose class has this override: with several overrides of a
    #: hook, the override runs in fewer calls when one before it does not call super().
    calls: int = 0
    #: "module.Class" of the override that did not pass control on -> calls it did so
    stopped_by: dict[str, int] = field(default_factory=dict)
    #: tasks whose class has this override: what a test would run to make it run
    tasks: set[str] = field(default_factory=set)
    #: tasks whose own class overrides ``__call__``/``run`` again: only super() reaches it
    shadowed: set[str] = field(default_factory=set)

    @property
    def runs(self) -> int:
        """Executions that ran it, every mode."""
        return sum(self.modes.values())


@dataclass
class ClassCoverage:
    """One task class: its overrides, and the tasks built on it."""

    methods: dict[str, MethodCoverage] = field(default_factory=dict)
    #: the tasks built on it (registered on the project app, or run)
    tasks: set[str] = field(default_factory=set)
    #: those that ran during the session
    ran: set[str] = field(default_factory=set)

    def method(self, name: str) -> MethodCoverage:
        found = self.methods.get(name)
        if found is None:
            found = self.methods[name] = MethodCoverage()
        return found


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


@dataclass(frozen=True, slots=True)
class _Override:
    """One override in a task class's chain for a method, tied to its coverage."""

    qualname: str
    key: str  # "module.Class"
    coverage: MethodCoverage
    owner: ClassCoverage


@dataclass(slots=True)
class _Plan:
    """What a task class adds to: per method its overrides in MRO order (the first runs
    first), the methods its own class overrides again, the task names added already."""

    chains: dict[str, tuple[_Override, ...]]
    shadowing: tuple[str, ...]
    known: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)


class LifecycleCoverage:
    """Every override of the session's task classes and how often executions ran it."""

    def __init__(self) -> None:
        #: "module.Class" -> its coverage
        self.classes: dict[str, ClassCoverage] = {}
        #: Why the result may be incomplete (a project app that would not load, an
        #: xdist worker that sent nothing): shown with the report.
        self.problems: list[str] = []
        # Per task class, computed once: a suite runs the same classes test after test.
        # Weak keys: the classes of tasks declared in a test (and their apps) must not live
        # on, so a plan holds names and coverage objects, never a class.
        self._plans: weakref.WeakKeyDictionary[type, _Plan] = weakref.WeakKeyDictionary()

    def _class(self, key: str) -> ClassCoverage:
        found = self.classes.get(key)
        if found is None:
            found = self.classes[key] = ClassCoverage()
        return found

    def _plan(self, cls: type) -> _Plan:
        plan = self._plans.get(cls)
        if plan is None:
            chains = {}
            for method, chain in override_chains(cls).items():
                overrides = []
                for klass in chain:
                    owner = self._class(class_key(klass))
                    overrides.append(
                        _Override(klass.__qualname__, class_key(klass), owner.method(method), owner)
                    )
                chains[method] = tuple(overrides)
            shadowing = tuple(m for m in CALLS if m in vars(cls) and m in chains)
            plan = self._plans[cls] = _Plan(chains, shadowing)
        return plan

    def add_task(self, name: str, cls: type, *, ran: bool) -> None:
        """Know task ``name`` of class ``cls`` (registered, or ``ran`` in the session)."""
        original = vars(cls).get("__celerybase_original__")
        cls = original if isinstance(original, type) else cls  # a recording subclass
        plan = self._plan(cls)
        if name in (plan.ran if ran else plan.known):
            return
        plan.known.add(name)
        if ran:
            plan.ran.add(name)
        for method, chain in plan.chains.items():
            for override in chain:
                override.owner.tasks.add(name)
                if ran:
                    override.owner.ran.add(name)
                override.coverage.tasks.add(name)
                if method in plan.shadowing:
                    override.coverage.shadowed.add(name)

    def add_test(self, tally: TestTally, classes: dict[str, type]) -> None:
        """Add one test's tally; ``classes`` maps its task names to their classes."""
        for name in tally.ran:
            cls = classes.get(name)
            if cls is not None:
                self.add_task(name, cls, ran=True)
        cooperation: dict[tuple[str, str, str], list[tuple[tuple[str, ...], tuple[str, ...], int]]]
        cooperation = {}
        for (name, hook, mode, names, ran), n in tally.cooperation.items():
            cooperation.setdefault((name, hook, mode), []).append((names, ran, n))
        for (name, hook, mode), n in tally.hooks.items():
            cls = classes.get(name)
            chain = self._plan(cls).chains.get(hook) if cls is not None else None
            if chain:
                _add_calls(chain, hook, mode, n, cooperation.get((name, hook, mode), []))
        for (_, key, method, mode), n in tally.overrides.items():
            _add(self._class(key).method(method).modes, mode, n)

    # -- the project app ------------------------------------------------------------------
    def add_project_app(self, path: str) -> None:
        """Know every task of the project app ``"package.module:app"``, with the modules
        its worker would import (``imports``/``include``, autodiscovery): a class whose
        tasks no test ran is reported too.  A failure is noted in :attr:`problems`."""
        from pytest_celerybase.apps.celery_globals import celery_globals_restored
        from pytest_celerybase.apps.isolated import load_app

        try:
            # As in a test: whatever the imports make current or register elsewhere is undone.
            with celery_globals_restored():
                app = load_app(path)
                app.loader.import_default_modules()
                tasks = dict(app.tasks)
        except Exception as exc:  # the report says so; the session goes on
            self.problems.append(
                f"the project app's tasks are not listed: {type(exc).__name__}: {exc}"
            )
            return
        self.add_registered(tasks)

    def add_registered(self, tasks: dict[str, Any]) -> None:
        """Know every task of a registry (``app.tasks``) but Celery's built-in ones."""
        for name, task in tasks.items():
            if str(name).startswith("celery."):
                continue
            self.add_task(str(name), type(task), ran=False)

    # -- between processes (xdist) -------------------------------------------------------
    def to_data(self) -> dict[str, Any]:
        """Everything as JSON-able data (what an xdist worker sends its controller)."""
        return {
            "classes": {
                key: {
                    "tasks": sorted(c.tasks),
                    "ran": sorted(c.ran),
                    "methods": {
                        method: {
                            "modes": m.modes,
                            "calls": m.calls,
                            "stopped_by": m.stopped_by,
                            "tasks": sorted(m.tasks),
                            "shadowed": sorted(m.shadowed),
                        }
                        for method, m in c.methods.items()
                    },
                }
                for key, c in self.classes.items()
            },
            "problems": list(self.problems),
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add what :meth:`to_data` gave (another process's coverage): counts are summed."""
        for key, sent in data.get("classes", {}).items():
            coverage = self.classes.get(key)
            if coverage is None:
                coverage = self.classes[key] = ClassCoverage()
            coverage.tasks.update(sent["tasks"])
            coverage.ran.update(sent["ran"])
            for method, m in sent["methods"].items():
                mine = coverage.method(method)
                for mode, n in m["modes"].items():
                    _add(mine.modes, mode, n)
                mine.calls += m["calls"]
                for stopper, n in m["stopped_by"].items():
                    _add(mine.stopped_by, stopper, n)
                mine.tasks.update(m["tasks"])
                mine.shadowed.update(m["shadowed"])
        self.problems.extend(p for p in data.get("problems", []) if p not in self.problems)

    # -- the result -----------------------------------------------------------------------
    def never_ran(self) -> list[tuple[str, str]]:
        """(class, method) of every override no execution ran, in report order."""
        return [
            (key, method)
            for key in sorted(self.classes)
            for method in METHODS
            if method in self.classes[key].methods
            and self.classes[key].methods[method].runs == 0
        ]


def _add_calls(
    chain: tuple[_Override, ...],
    hook: str,
    mode: str,
    calls: int,
    cooperated: list[tuple[tuple[str, ...], tuple[str, ...], int]],
) -> None:
    """Add ``calls`` calls of ``hook`` on tasks whose class has the overrides ``chain``."""
    for override in chain:
        override.coverage.calls += calls
    if len(chain) == 1:  # a single override runs whenever the hook is called
        _add(chain[0].coverage.modes, mode, calls)
        return
    # Several overrides: the cooperative check noted which ran in each call.
    noted = 0
    for names, ran, n in cooperated:
        noted += n
        for override in chain:
            if override.qualname in ran:
                _add(override.coverage.modes, mode, n)
                continue
            stopper = _stopper(override, chain, names, ran)
            if stopper is not None:
                _add(override.coverage.stopped_by, f"{stopper.key}.{hook}", n)
    # Calls it did not see (an instance-level override, a mock): the first one ran.
    if calls > noted:
        _add(chain[0].coverage.modes, mode, calls - noted)


def _stopper(
    override: _Override, chain: tuple[_Override, ...], names: tuple[str, ...], ran: tuple[str, ...]
) -> _Override | None:
    """The override that ran last before ``override`` in a call where it did not run:
    the one that did not pass control on (``None`` when none before it ran)."""
    if override.qualname not in names:
        return None
    before = names[: names.index(override.qualname)]
    last = [name for name in ran if name in before]
    if not last:
        return None
    return next((o for o in chain if o.qualname == last[-1]), None)
