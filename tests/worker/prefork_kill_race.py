"""A hard time limit's kill racing billiard's supervisor, forced (run by test_prefork.py).

After SIGTERM, billiard's time-limit thread waits on the child's sentinel; the supervisor
joining the exited child meanwhile closes that sentinel, and billiard then ends this
whole process (``os._exit(1)``).  The wait below lets the child exit and runs the
supervisor's check from another thread right then; it is given 0.2 s to finish before
the time-limit thread goes on.  Exit status 0 and "killed 1" means the kill survived.
Run in a subprocess: a regression ends the process.
"""

import os
import sys
import threading
import time

from billiard import connection
from celery import Celery
from celery.exceptions import TimeLimitExceeded

from pytest_celerybase.worker import LiveWorker, live_defaults

app = Celery("kill-race", set_as_current=False)
app.conf.update(live_defaults())


@app.task(shared=False, time_limit=0.05)
def stuck() -> None:
    time.sleep(5)


worker = LiveWorker(app, pool="prefork", concurrency=1)
real_wait = connection.wait
killed: list[int] = []


def wait(object_list, timeout=None):  # type: ignore[no-untyped-def]
    pool = getattr(getattr(worker.controller, "pool", None), "_pool", None)
    handler = getattr(pool, "_timeout_handler", None)
    if handler is not None and threading.current_thread() is handler and not killed:
        child = next(p for p in pool._pool if p._popen.sentinel in object_list)
        try:
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        except ChildProcessError:
            pass  # the supervisor reaped it already
        supervisor = threading.Thread(target=pool._join_exited_workers)
        supervisor.start()
        supervisor.join(0.2)
        killed.append(child.pid)
    return real_wait(object_list, timeout)


connection.wait = wait
with worker:
    try:
        stuck.delay().get(timeout=5)
    except TimeLimitExceeded:
        pass
    deadline = time.monotonic() + 5
    while not killed and time.monotonic() < deadline:
        time.sleep(0.01)  # the kill follows the failure (stopping first would kill it)
print("killed", len(killed))
sys.exit(0)
