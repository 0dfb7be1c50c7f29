"""The live worker: a real Celery worker in the test process (solo, threads or prefork).

``live`` (:class:`LiveWorker`), ``options`` (its settings and defaults), ``controller``
(Celery's worker machinery made prompt and stoppable), ``backends`` (fast result
backends, the prefork broker transport), ``prefork`` and ``prompt_pools`` (the prefork
pool and billiard made prompt and safe), ``channel`` (what forked children send to the
test process).  Names are imported on first use: modules that must not pull in Celery's
worker use the channel.  No pytest import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_celerybase._lazy import exports

if TYPE_CHECKING:
    from pytest_celerybase.errors import UnregisteredTaskError as UnregisteredTaskError
    from pytest_celerybase.errors import WorkerStartError as WorkerStartError
    from pytest_celerybase.errors import WorkerStopError as WorkerStopError
    from pytest_celerybase.worker.live import LiveWorker as LiveWorker
    from pytest_celerybase.worker.options import live_defaults as live_defaults

_EXPORTS = {
    "LiveWorker": "worker.live",
    "live_defaults": "worker.options",
    "UnregisteredTaskError": "errors",
    "WorkerStartError": "errors",
    "WorkerStopError": "errors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = exports(__name__, _EXPORTS)
