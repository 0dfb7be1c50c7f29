"""What a prefork child logs, warns and prints, forwarded to the test process (no pytest).

A child's copies of the test's log handlers (``caplog``), warning log (``recwarn``) and
captured ``sys.stdout`` (``capsys``) are its own: what it writes there is lost.  In a
child of an open channel (:mod:`.channel`), the root logger's handlers are replaced by one
that sends each record to the test process, ``warnings.showwarning`` by one that sends
the warning, and ``sys.stdout``/``sys.stderr`` by writers that send the text.  The test
process hands each to the logger of its name, to ``warnings.warn_explicit`` or to its own
``sys.stdout``/``sys.stderr``: whatever captures them there (pytest) sees them.  A child
sends before it goes on, so what it wrote before storing a task's result has arrived when
``result.get()`` returns (the prompt result backends flush the channel then).
"""

from __future__ import annotations

import io
import logging
import pickle
import sys
import warnings
from typing import Any

from pytest_celerybase.worker import channel

__all__ = ["ForwardingHandler", "ForwardingStream", "install"]


class ForwardingHandler(logging.Handler):
    """A child's root handler: each record goes to the test process, made portable."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            channel.send("log", _portable(record))
        except Exception:
            self.handleError(record)


def _portable(record: logging.LogRecord) -> logging.LogRecord:
    # The message is formatted here: its arguments may not cross; so is the traceback.
    record.msg = record.getMessage()
    record.args = None
    if record.exc_info:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    try:
        pickle.loads(pickle.dumps(record))
    except Exception:  # an `extra` value that does not cross
        standard = vars(logging.makeLogRecord({}))
        for key in [k for k in vars(record) if k not in standard]:
            setattr(record, key, repr(getattr(record, key)))
    return record


class ForwardingStream(io.TextIOBase):
    """A child's ``sys.stdout``/``sys.stderr``: what is written goes to the test process."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def write(self, text: str) -> int:
        if text:
            channel.send("output", (self.name, text))
        return len(text)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


def _show_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    try:
        pickle.loads(pickle.dumps(category))
    except Exception:
        category = UserWarning  # a class the test process cannot import
    channel.send("warning", (str(message), category, filename, lineno))


# The root logger's level in the test process when this child was forked.
_forked_level: list[int] = []


def _at_fork() -> None:
    _forked_level[:] = [logging.getLogger().level]
    install()


def install() -> None:
    """Forward this child's log records, warnings and output to the test process (a
    prefork child calls it again once Celery has set its logging up, which also sets the
    root level: the test's level, ``caplog.set_level`` included, is put back)."""
    root = logging.getLogger()
    if _forked_level:
        root.setLevel(_forked_level[0])
    # The handlers inherited from the test process write to this process's copies.
    root.handlers = [ForwardingHandler()]
    warnings.showwarning = _show_warning
    sys.stdout = ForwardingStream("stdout")
    sys.stderr = ForwardingStream("stderr")


def _log(record: logging.LogRecord) -> None:
    logging.getLogger(record.name).handle(record)


def _warning(payload: tuple[str, type[Warning], str, int]) -> None:
    message, category, filename, lineno = payload
    warnings.warn_explicit(message, category, filename, lineno, registry={})


def _output(payload: tuple[str, str]) -> None:
    name, text = payload
    stream = sys.stdout if name == "stdout" else sys.stderr
    stream.write(text)


channel.CHILD_STARTS.append(_at_fork)
channel.OUTPUTS.update(log=_log, warning=_warning, output=_output)
