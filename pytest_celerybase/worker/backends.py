"""Result backends and a broker transport that keep a live worker's round trips fast.

Celery polls a key-value result backend every 0.5 s while ``result.get()`` waits: for
storage in the test process (``cache+memory://``) or in a file next to it (``file://``,
the prefork pool's), that is pure waiting, so these check every 5 ms.  The file-system
transport and backend of a prefork worker write each message and result atomically,
since a child and the parent read them concurrently (no pytest import).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from celery.backends.cache import CacheBackend
from celery.backends.filesystem import FilesystemBackend
from kombu.transport import filesystem
from kombu.utils.encoding import ensure_bytes, str_to_bytes
from kombu.utils.json import dumps

from pytest_celerybase.worker import channel

__all__ = ["MEMORY_BACKEND", "FileResultBackend", "FileTransport", "MemoryResultBackend",
           "PromptResults"]  # fmt: skip

# Seconds between checks of a key-value result backend while result.get() waits
# (Celery's default is 0.5 s: most of a test's run time).
_RESULT_POLL_INTERVAL = 0.005


class PromptResults:
    """Mixin for a key-value result backend: ``result.get()`` checks it every 5 ms.

    Celery polls such a backend every ``interval`` (0.5 s by default); for storage in
    this process, or in a file next to it, that is pure waiting.  Once a result is in,
    what prefork children sent before storing it (log records, warnings, prints) is taken
    in, so the test sees it right after ``result.get()``.
    """

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5,
                 **kwargs: Any) -> Any:
        interval = min(interval, _RESULT_POLL_INTERVAL)
        meta = super().wait_for(  # type: ignore[misc]
            task_id, timeout=timeout, interval=interval, **kwargs
        )
        channel.flush()
        return meta

    def get_many(self, task_ids: Any, timeout: float | None = None, interval: float = 0.5,
                 **kwargs: Any) -> Any:
        interval = min(interval, _RESULT_POLL_INTERVAL)
        return super().get_many(  # type: ignore[misc]
            task_ids, timeout=timeout, interval=interval, **kwargs
        )


class MemoryResultBackend(PromptResults, CacheBackend):  # type: ignore[misc]
    """Celery's ``cache+memory://`` result backend, checked every 5 ms while waiting
    (:class:`PromptResults`).  Storage is Celery's own."""


#: The loader alias of :class:`MemoryResultBackend` (``cache+memory://`` resolves to it).
MEMORY_BACKEND = f"{__name__}:MemoryResultBackend"


class FileResultBackend(PromptResults, FilesystemBackend):  # type: ignore[misc]
    """Celery's ``file://`` backend, checked every 5 ms while ``get()`` waits (0.5 s).

    Each result is written to a temporary name and renamed: Celery's backend truncates and
    rewrites the file in place, so a child and the parent (or a reader) meeting on one
    task's file read a half-written or doubled document (``DecodeError: Extra data``,
    seen with a retry on prefork over RabbitMQ).
    """

    def set(self, key: Any, value: Any) -> None:
        final = self._filename(key)  # bytes, as Celery builds it
        suffix = f".{os.getpid()}.{threading.get_ident()}.part"
        temporary = final + (suffix.encode() if isinstance(final, bytes) else suffix)
        with self.open(temporary, "wb") as outfile:
            outfile.write(ensure_bytes(value))  # type: ignore[no-untyped-call]
        os.replace(temporary, final)


class _AtomicFileChannel(filesystem.Channel):
    """kombu's file-system channel, writing each message under its final name at once.

    kombu creates the file, then writes it; a consumer polling meanwhile moves and reads
    an empty file (JSONDecodeError: the message is lost).  Measured with a child's retry
    and a redelivery.  The message is written to a name no consumer matches (kombu < 5.7
    takes any name *containing* ``.<queue>.msg``), then renamed.
    """

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        unique = f"{round(time.monotonic() * 1000)}_{os.urandom(16).hex()}"
        final = os.path.join(self.data_folder_out, f"{unique}.{queue}.msg")
        part = os.path.join(self.data_folder_out, f".{unique}.part")
        with open(part, "wb") as f:
            f.write(str_to_bytes(dumps(payload)))  # type: ignore[no-untyped-call]
        os.rename(part, final)


class FileTransport(filesystem.Transport):
    """kombu's ``filesystem://`` transport with :class:`_AtomicFileChannel`."""

    Channel = _AtomicFileChannel
