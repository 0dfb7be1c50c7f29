"""live_worker on the prefork pool: children forked from the test process, as in production.

Tasks are declared at module level (``@shared_task``): a prefork worker's children have the
tasks the app had when they were forked.  Concurrency is small and time limits short, so
the file stays fast.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Task, shared_task, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery.utils.serialization import UnpickleableExceptionWrapper

import pytest_celerybase
from pytest_celerybase import HookCall, HookRecorder, assert_hooks_called, hook_calls
from pytest_celerybase._compat import CELERY_VERSION
from pytest_celerybase.bases import APIClientTask, CachedTask, DatabaseTask, ResourcePoolTask
from pytest_celerybase.bases.database import dispose_engines
from pytest_celerybase.worker import LiveWorker, WorkerStartError, WorkerStopError
from pytest_celerybase.worker.channel import portable
from pytest_celerybase.worker.options import BROKER_URL_ENV
from tests.conftest import RunPytest
from tests.leak_guard import child_processes

WAIT = 5.0
PARENT = os.getpid()
prefork = pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)
prefork_one = pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=1)


class Cleanup(Task):  # type: ignore[misc]
    """Overrides the failure hooks (Celery runs them in the parent on a hard limit)."""

    def on_failure(self, exc: Any, task_id: Any, args: Any, kwargs: Any, einfo: Any) -> None:
        pass

    def after_return(self, *args: Any) -> None:
        pass


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle Unpicklable")

    def __repr__(self) -> str:
        return "<Unpicklable>"


class LockedError(Exception):
    """An exception that cannot be pickled (it holds a lock)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lock = threading.Lock()


@shared_task(name="pf.add")
def add(x: int, y: int) -> int:
    return x + y


@shared_task(name="pf.pid")
def child_pid() -> int:
    return os.getpid()


@shared_task(name="pf.locked", base=Cleanup)
def locked() -> None:
    raise LockedError("card declined")


@shared_task(name="pf.soft", soft_time_limit=0.05)
def soft_limited() -> str:
    try:
        time.sleep(WAIT)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "completed"


@shared_task(name="pf.hard", base=Cleanup, time_limit=0.1)
def hard_limited() -> None:
    time.sleep(WAIT)


@shared_task(name="pf.sleeps", base=Cleanup)
def sleeps(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


@shared_task(name="pf.exits", base=Cleanup)
def exits() -> None:
    os._exit(3)


@shared_task(name="pf.once", bind=True, acks_late=True, reject_on_worker_lost=True)
def dies_once(self: Task, marker: str) -> str:
    if not os.path.exists(marker):
        open(marker, "w").close()  # the first delivery leaves a mark, then dies
        os._exit(9)
    return "second delivery"


@shared_task(name="pf.flaky", bind=True, default_retry_delay=0)
def flaky(self: Task) -> str:
    if self.request.retries < 2:
        raise self.retry(exc=KeyError("again"))
    return "done"


@shared_task(name="pf.env")
def env(name: str) -> str | None:
    return os.environ.get(name)


# -- records from children ---------------------------------------------------------------
@prefork
def test_hooks_run_in_a_child_and_reach_the_test(live_worker: LiveWorker) -> None:
    result = add.delay(2, 3)
    assert result.get(timeout=WAIT) == 5
    assert_hooks_called(result, ["before_start", "on_success", "after_return"])
    calls = hook_calls(add)
    assert {c.pid for c in calls} <= set(live_worker.child_pids())
    assert PARENT not in {c.pid for c in calls}
    success = calls[1]
    assert (success.task_id, success.args, success.kwargs, success.retval) == (
        result.id, [2, 3], {}, 5,
    )
    assert calls[2].status == "SUCCESS"


@prefork
def test_unpicklable_exception_arrives_as_celerys_wrapper(live_worker: LiveWorker) -> None:
    result = locked.delay()
    with pytest.raises(Exception, match="card declined"):
        result.get(timeout=WAIT)
    assert_hooks_called(result, ["before_start", "on_failure", "after_return"])
    failure = hook_calls(locked)[1]
    # What the result backend stores for it too: result.get() and the record agree.
    assert isinstance(failure.exc, UnpickleableExceptionWrapper)
    assert failure.exc.exc_cls_name == "LockedError"
    assert "card declined" in str(failure.exc)


def test_file_broker_message_is_invisible_to_consumers_until_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kombu import Connection

    renamed: list[tuple[str, str]] = []
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        # kombu < 5.7 consumes any file whose name contains ".<queue>.msg": the one
        # being written must not (a consumer would read it empty or half-written).
        renamed.append((os.path.basename(src), os.path.basename(dst)))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path),
               "control_folder": str(tmp_path / "control")}
    with Connection("filesystem://", transport="pytest_celerybase.worker.backends:FileTransport",
                    transport_options=options) as conn:
        queue = conn.SimpleQueue("q")
        queue.put({"n": 1})
        assert queue.get(timeout=WAIT).payload == {"n": 1}
        queue.close()
    written, published = renamed[0]  # (then the consumer moves the message away)
    assert ".q.msg" not in written and published.endswith(".q.msg")


def test_portable_keeps_what_pickles_and_reprs_the_rest() -> None:
    call = HookCall("on_failure", "t", "id-1", (Unpicklable(), 1), {"k": 2}, None,
                    LockedError("boom"), None, None, "MainThread", 123)
    sent = pickle.loads(pickle.dumps(portable(call)))
    assert sent.args == "(<Unpicklable>, 1)"  # the value as its repr
    assert sent.kwargs == {"k": 2}  # what pickles is kept as it is
    assert isinstance(sent.exc, UnpickleableExceptionWrapper)
    assert (sent.pid, sent.thread, sent.task_id) == (123, "MainThread", "id-1")
    fine = HookCall("on_success", "t", "id-2", [1], {}, 2)
    assert portable(fine) is fine


# -- only prefork: time limits, lost children ---------------------------------------------
@prefork
def test_soft_time_limit_raises_inside_the_task(live_worker: LiveWorker) -> None:
    result = soft_limited.delay()
    assert result.get(timeout=WAIT) == "cleaned up"
    assert_hooks_called(result, ["before_start", "on_success", "after_return"])


@prefork
def test_hard_time_limit_runs_failure_hooks_in_the_parent(live_worker: LiveWorker) -> None:
    result = hard_limited.delay()
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=WAIT)
    calls = hook_calls(hard_limited)  # waits for the parent's hooks too
    where = [(c.hook, "parent" if c.pid == PARENT else "child") for c in calls]
    if CELERY_VERSION >= (5, 7):
        assert where == [("before_start", "child"), ("on_failure", "parent"),
                         ("after_return", "parent")]
        assert isinstance(calls[1].exc, TimeLimitExceeded)
    else:  # Celery 5.6 and older run no hook for a hard time limit
        assert where == [("before_start", "child")]


def test_hard_time_limit_kill_survives_the_supervisor_joining_the_child() -> None:
    # billiard's time-limit thread waited on a sentinel the supervisor could close under
    # it; its ValueError ended the test session (os._exit(1)), silently, now and then.
    here = str(Path(pytest_celerybase.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH", "")) if p)}
    env.pop(BROKER_URL_ENV, None)  # the blocking pool (memory broker) has the thread
    script = Path(__file__).with_name("prefork_kill_race.py")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "killed 1\n"), done.stderr[-2000:]
    assert "crashed" not in done.stderr


@prefork
def test_kill_child_gives_worker_lost_error(live_worker: LiveWorker) -> None:
    result = sleeps.delay(WAIT)
    pid = live_worker.kill_child(result.id)
    assert pid in {c.pid for c in hook_calls(sleeps)}
    with pytest.raises(WorkerLostError, match="signal 9"):
        result.get(timeout=WAIT)
    assert_hooks_called(result, ["before_start"])  # no hook runs for a lost child


@prefork
def test_task_calling_os_exit_gives_worker_lost_error(live_worker: LiveWorker) -> None:
    result = exits.delay()
    with pytest.raises(WorkerLostError, match="exitcode 3"):
        result.get(timeout=WAIT)
    assert_hooks_called(result, ["before_start"])


@prefork
def test_acks_late_redelivers_a_task_whose_child_died(
    live_worker: LiveWorker, tmp_path: Any
) -> None:
    result = dies_once.delay(str(tmp_path / "died"))
    assert result.get(timeout=WAIT) == "second delivery"
    assert_hooks_called(result, ["before_start", "before_start", "on_success", "after_return"])
    first, second = hook_calls(dies_once)[:2]
    assert first.pid != second.pid  # the first child died; another ran it again


@prefork_one
def test_retry_from_a_child_reaches_the_broker(live_worker: LiveWorker) -> None:
    # The child publishes the retry: the broker must cross processes (not memory://).
    result = flaky.delay()
    assert result.get(timeout=WAIT) == "done"
    assert_hooks_called(result, ["before_start", "on_retry", "before_start", "on_retry",
                                 "before_start", "on_success", "after_return"])


@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=1,
                        worker_max_tasks_per_child=1)
def test_max_tasks_per_child_recycles_children(live_worker: LiveWorker) -> None:
    pids = [child_pid.delay().get(timeout=WAIT) for _ in range(3)]
    assert len(set(pids)) == 3 and PARENT not in pids


@pytest.fixture
def process_init() -> Iterator[None]:
    def mark(**_: Any) -> None:
        os.environ["CELERYBASE_INIT_PID"] = str(os.getpid())

    signals.worker_process_init.connect(mark, weak=False)
    yield
    signals.worker_process_init.disconnect(mark)


@prefork
def test_worker_process_init_runs_in_each_child(
    process_init: None, live_worker: LiveWorker
) -> None:
    pids = {int(env.delay("CELERYBASE_INIT_PID").get(timeout=WAIT)) for _ in range(2)}
    assert pids <= set(live_worker.child_pids())
    assert "CELERYBASE_INIT_PID" not in os.environ  # it ran in the children only


# -- fork safety of the reference bases -----------------------------------------------------
class PooledTask(ResourcePoolTask):  # type: ignore[misc]
    def create_resource(self) -> object:
        return object()


def _probe(resource: Any) -> dict[str, Any]:
    time.sleep(0.2)  # both children take one each
    return {"pid": os.getpid(), "inherited": bool(getattr(resource, "made_in_parent", False))}


@shared_task(name="pf.db", base=DatabaseTask, bind=True, database_url="sqlite://")
def probe_db(self: DatabaseTask) -> dict[str, Any]:
    return _probe(self.db)


@shared_task(name="pf.session", base=APIClientTask, bind=True)
def probe_session(self: APIClientTask) -> dict[str, Any]:
    return _probe(self.session)


@shared_task(name="pf.pool", base=PooledTask, bind=True)
def probe_pool(self: PooledTask) -> dict[str, Any]:
    return _probe(self.resource_pool)


@shared_task(name="pf.redis", base=CachedTask, bind=True, cache_redis_url="redis://127.0.0.1:1/0")
def probe_redis(self: CachedTask) -> dict[str, Any]:
    return _probe(self.cache)


PROBES = {"pf.db": "db", "pf.session": "session", "pf.pool": "resource_pool", "pf.redis": "cache"}


@pytest.fixture
def made_in_parent() -> Iterator[dict[str, int]]:
    """Create every base's resource in the parent before the fork (worker_init)."""
    made: dict[str, int] = {}

    def create(sender: Any = None, **_: Any) -> None:
        for name, attr in PROBES.items():
            resource = getattr(sender.app.tasks[name], attr)
            resource.made_in_parent = True
            made[name] = os.getpid()

    signals.worker_init.connect(create, weak=False)
    yield made
    signals.worker_init.disconnect(create)
    # The parent's engine is the process's own (ProcessLocal): a later test asserting
    # that nothing was created yet would see it (tests/test_bases_database.py).
    dispose_engines()


@prefork
@pytest.mark.filterwarnings("ignore::UserWarning")  # CachedTask: Redis is down, runs uncached
def test_each_child_makes_its_own_resources(
    made_in_parent: dict[str, int], live_worker: LiveWorker
) -> None:
    assert made_in_parent == dict.fromkeys(PROBES, PARENT)
    for task in (probe_db, probe_session, probe_pool, probe_redis):
        results = [r.get(timeout=WAIT) for r in [task.delay(), task.delay()]]
        assert [r["inherited"] for r in results] == [False, False], task.name
        assert len({r["pid"] for r in results}) == 2 and PARENT not in {r["pid"] for r in results}


# -- start, stop, misuse ------------------------------------------------------------------
@pytest.fixture
def failing_child_start() -> Iterator[None]:
    def refuse(**_: Any) -> None:
        raise SystemExit("cannot reach the database")  # Celery logs an Exception; this exits

    signals.worker_process_init.connect(refuse, weak=False)
    yield
    signals.worker_process_init.disconnect(refuse)


def test_child_that_cannot_start_gives_worker_start_error(
    failing_child_start: None, hook_recorder: HookRecorder
) -> None:
    from celery import Celery

    from pytest_celerybase.worker import live_defaults

    app = Celery("cannot-start", set_as_current=False)
    app.conf.update(live_defaults())
    worker = LiveWorker(app, pool="prefork", concurrency=1, start_timeout=WAIT)
    with pytest.raises(WorkerStartError, match=r"prefork child \d+ failed to start: "
                       r"SystemExit: cannot reach the database"):
        worker.start()
    assert not worker.running
    app.close()


def test_task_still_running_at_stop_is_reported_and_its_child_killed(
    hook_recorder: HookRecorder,
) -> None:
    from celery import Celery

    from pytest_celerybase.worker import live_defaults

    app = Celery("hangs", set_as_current=False)
    app.conf.update(live_defaults())
    worker = LiveWorker(app, pool="prefork", concurrency=1, stop_timeout=0.2)
    worker.start()
    result = app.send_task("pf.sleeps", (WAIT,))
    worker.kill_child  # noqa: B018 - documented on the class
    deadline = time.monotonic() + WAIT
    while not worker.child_pids() or "pf.sleeps" not in hook_recorder.task_names():
        hook_recorder.wait_idle(timeout=0)  # reads the children's records
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # The parent may not have read yet that the child started it: "in the pool".
    with pytest.raises(WorkerStopError, match=r"(still running|in the pool, not finished): "
                       r"pf\.sleeps\[.*prefork children were killed"):
        worker.stop()
    assert not worker.running and child_processes() == []
    assert result.id
    app.close()


def test_prefork_session_leaves_no_child_or_thread(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        test_inner="""
import pytest
from celery import shared_task

@shared_task(name="inner.add")
def add(x, y):
    return x + y

@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)
@pytest.mark.parametrize("n", range(3))
def test_prefork(live_worker, n):
    assert add.delay(n, 1).get(timeout=5) == n + 1

@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=1)
def test_declared_too_late(live_worker):
    @live_worker.app.task
    def late():
        return 1

    late.delay().get(timeout=5)

@pytest.mark.celerybase(worker_pool="prefork")
def test_with_a_double(live_worker, fake_redis):
    pass
"""
    )
    threads = set(threading.enumerate())
    result = run("-p", "tests.leak_guard", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*live_worker: ValueError: worker_pool='prefork' runs tasks in child processes, "
            "which cannot share fake_redis with the test: fake_redis: fakeredis keeps its "
            "data in the test process*",
            "*UnregisteredTaskError: task 'test_inner.late' was declared after the prefork "
            "live worker forked its children, so they do not have it*Fix: declare it before "
            "live_worker starts*",
        ]
    )
    assert child_processes() == []
    assert {t for t in threading.enumerate() if t.is_alive()} <= threads
    # Nothing written to the working directory (kombu's file broker keeps a ./control).
    assert sorted(p.name for p in pytester.path.iterdir()) == [".pytest_cache", "test_inner.py"]


def test_kill_child_needs_the_prefork_pool(live_worker: LiveWorker) -> None:
    with pytest.raises(RuntimeError, match="kill_child needs worker_pool='prefork'"):
        live_worker.kill_child("some-id")


# -- billiard's pool threads in the test process ---------------------------------------------
def _sleeper() -> None:
    time.sleep(30)


def test_a_hard_limit_on_a_child_already_reaped_kills_nothing() -> None:
    # The time-limit thread waits on the child's sentinel after SIGTERM; billiard's
    # supervisor may have reaped the child and closed that descriptor meanwhile.  That
    # raised "invalid file descriptor" in the thread, and billiard then ended the whole
    # test process with os._exit(1) (seen about once in 15 runs of a hard time limit).
    from billiard import Process

    from pytest_celerybase.worker.prompt_pools import _PromptTimeoutHandler

    handler = _PromptTimeoutHandler([], {}, None, None)  # (its thread is not started)
    child = Process(target=_sleeper)
    child.start()
    os.kill(child.pid, 9)
    child.join(WAIT)
    assert child.exitcode == -9
    handler._trywaitkill(child)  # reaped: nothing to do, no error

    gone = Process(target=_sleeper)
    gone.start()
    os.kill(gone.pid, 9)
    os.close(gone._popen.sentinel)  # closed under billiard's wait, child not reaped yet
    gone._popen.sentinel = -1
    handler._trywaitkill(gone)  # billiard's wait raises: the child is killed, no error
    os.waitpid(gone.pid, 0)


def test_a_crashing_pool_thread_does_not_end_the_test_process(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from pytest_celerybase.worker.prompt_pools import _PromptSupervisor

    class Broken(_PromptSupervisor):
        def body(self) -> None:
            raise ValueError("boom")

    thread = Broken.__new__(Broken)
    assert thread.run() is None  # billiard's own run() calls os._exit(1) here
    # billiard's logger (a stderr handler of its own, or the root logger's)
    assert "Thread 'Broken' crashed: ValueError('boom')" in capfd.readouterr().err + caplog.text
