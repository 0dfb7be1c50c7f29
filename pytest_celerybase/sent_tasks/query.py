"""What a test expects of a sent task message, checked, and how a message matches it.

Shared by ``assert_task_sent``/``assert_task_not_sent`` and ``SentTasks.filter``: one
validation of the task, ``args``/``kwargs`` and options (a typo is a ``TypeError``, never
a silent pass) and one notion of a match, with each difference described for the
failure messages (:mod:`.explain`).
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pytest_celerybase.apps.names import unknown_name_hint
from pytest_celerybase.sent_tasks.values import same_value, strictly_equal, type_note

if TYPE_CHECKING:
    from pytest_celerybase.sent_tasks.message import SentTask

__all__ = ["OPTIONS", "TOLERANCE", "Query"]

#: Seconds within which ``countdown``/``eta``/``expires`` match a message.
TOLERANCE = 1.0
_MISSING: Any = object()


# -- option checks -----------------------------------------------------------------------
# Each check gets the message and the expected value; it returns None on a match, else
# how the message differs (shown as the "+ sent" side of the diff).
_Check = Callable[["SentTask", Any], "str | None"]


def _seconds_after_sending(record: SentTask, when: datetime | None) -> float | None:
    return None if when is None else (when - record.sent_at).total_seconds()


def _check_countdown(record: SentTask, expected: Any) -> str | None:
    delay = _seconds_after_sending(record, record.eta)
    if delay is None:
        return None if expected is None or expected == 0 else "no eta (sent to run now)"
    if expected is not None and abs(delay - expected) <= TOLERANCE:
        return None
    return f"countdown={delay:.1f} (eta {record.eta})"


def _check_eta(record: SentTask, expected: Any) -> str | None:
    eta = record.eta
    if eta is None:
        return None if expected is None else "no eta (sent to run now)"
    if expected is not None and abs((eta - _aware(expected, record)).total_seconds()) <= TOLERANCE:
        return None
    return f"eta={eta}"


def _check_expires(record: SentTask, expected: Any) -> str | None:
    expires = record.expires
    if expires is None:
        return None if expected is None else "no expiry"
    after = (expires - record.sent_at).total_seconds()
    if isinstance(expected, datetime):
        if abs((expires - _aware(expected, record)).total_seconds()) <= TOLERANCE:
            return None
    elif expected is not None and abs(after - expected) <= TOLERANCE:
        return None
    return f"expires={after:.1f} (at {expires})"


def _check_attribute(attr: str) -> _Check:
    def check(record: SentTask, expected: Any) -> str | None:
        actual = getattr(record, attr)
        if attr == "exchange":
            # None and "" both mean the default (nameless) exchange: the message went
            # straight to the queue named by its routing key.
            expected = getattr(expected, "name", expected) or None
            actual = actual or None
        # Strict: priority=1 is not a message whose priority is True.
        if strictly_equal(expected, actual):
            return None
        return f"{attr}={actual!r}{type_note(expected, actual)}"

    return check


def _check_header(header: str, option: str, index: int | None = None) -> _Check:
    def check(record: SentTask, expected: Any) -> str | None:
        actual = record.fields().get(header)
        if index is not None:
            actual = (actual or (None, None))[index]
            # Time limits are durations: 30 and 30.0 seconds are the same limit.
            same = actual == expected and not isinstance(actual, bool)
        else:
            if header == "retries":
                actual = actual or 0
            same = strictly_equal(expected, actual)  # ignore_result=True is not 1
        return None if same else f"{option}={actual!r}{type_note(expected, actual)}"

    return check


def _check_headers(record: SentTask, expected: Any) -> str | None:
    headers = record.headers
    serializer = record.serializer
    wrong = {k: headers.get(k, _MISSING) for k in expected}
    wrong = {
        k: v for k, v in wrong.items()
        if v is _MISSING or not same_value(expected[k], v, serializer, decoded=False)
    }  # fmt: skip
    if not wrong:
        return None
    shown = {k: ("(absent)" if v is _MISSING else v) for k, v in wrong.items()}
    notes = "".join(type_note(expected[k], v) for k, v in wrong.items() if v is not _MISSING)
    return f"headers {shown!r}{notes}"


def _check_links(key: str) -> _Check:
    embed_key = "callbacks" if key == "link" else "errbacks"

    def check(record: SentTask, expected: Any) -> str | None:
        actual = record.callbacks if embed_key == "callbacks" else record.errbacks
        names = [str(s.get("task")) for s in actual]
        wanted = _as_list(expected)
        if not wanted:  # link=None / link=[]: the message carries none
            return None if not actual else f"{key}={names!r}"
        for want in wanted:
            if not any(_link_matches(want, sig, record) for sig in actual):
                return f"{key}={names!r}" if names else f"no {key}"
        return None

    return check


def _link_matches(want: Any, sig: Any, record: SentTask) -> bool:
    name = want if isinstance(want, str) else getattr(want, "name", None)
    if isinstance(want, Mapping):  # a Signature: its arguments count, as their own types
        name = want.get("task")
        if not _same_arguments(list(want.get("args") or ()), list(sig.get("args") or ()),
                               record):  # fmt: skip
            return False
        if not _same_arguments(dict(want.get("kwargs") or {}), dict(sig.get("kwargs") or {}),
                               record):  # fmt: skip
            return False
    return bool(sig.get("task") == name)


_CHECKS: dict[str, _Check] = {
    "countdown": _check_countdown,
    "eta": _check_eta,
    "expires": _check_expires,
    "queue": _check_attribute("queue"),
    "routing_key": _check_attribute("routing_key"),
    "exchange": _check_attribute("exchange"),
    "priority": _check_attribute("priority"),
    "headers": _check_headers,
    "link": _check_links("link"),
    "link_error": _check_links("link_error"),
    "serializer": _check_attribute("serializer"),
    "shadow": _check_header("shadow", "shadow"),
    "time_limit": _check_header("timelimit", "time_limit", 0),
    "soft_time_limit": _check_header("timelimit", "soft_time_limit", 1),
    "ignore_result": _check_header("ignore_result", "ignore_result"),
    "retries": _check_header("retries", "retries"),
    "parent_id": _check_header("parent_id", "parent_id"),
}

#: The options ``assert_task_sent``/``filter`` understand.
OPTIONS: tuple[str, ...] = tuple(_CHECKS)

_NUMBER = "a number of seconds"
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "countdown": ((numbers.Real,), _NUMBER),
    "eta": ((datetime,), "a datetime"),
    "expires": ((numbers.Real, datetime), f"{_NUMBER} or a datetime"),
    "queue": ((str,), "a queue name (str)"),
    "routing_key": ((str,), "a str"),
    "priority": ((int,), "an int"),
    "headers": ((Mapping,), "a dict (the headers the message must include)"),
    "serializer": ((str,), "a serializer name such as 'json'"),
    "shadow": ((str,), "a str"),
    "time_limit": ((numbers.Real,), _NUMBER),
    "soft_time_limit": ((numbers.Real,), _NUMBER),
    "ignore_result": ((bool,), "a bool"),
    "retries": ((int,), "an int"),
    "parent_id": ((str,), "a task id (str)"),
}


def _check_option_value(key: str, value: Any, caller: str) -> None:
    __tracebackhide__ = True
    if key in ("link", "link_error"):
        for item in _as_list(value):
            if not (isinstance(item, (str, Mapping)) or hasattr(item, "name")):
                raise TypeError(
                    f"{caller}: {key}= takes a signature, a task or a task name (or a list "
                    f"of them), got {type(item).__name__}: {item!r}"
                )
        return
    if key == "exchange":
        if value is None or isinstance(value, str) or hasattr(value, "name"):
            return
        raise TypeError(f"{caller}: exchange= takes an exchange name, got {value!r}")
    types, label = _TYPES[key]
    if value is None and key not in ("headers", "serializer", "ignore_result", "retries"):
        return  # "the message has none"
    if isinstance(value, bool) and bool not in types:
        raise TypeError(f"{caller}: {key}= takes {label}, got the bool {value!r}")
    if not isinstance(value, types):
        raise TypeError(f"{caller}: {key}= takes {label}, got {type(value).__name__}: {value!r}")
    if key == "headers" and not value:
        # A subset check of nothing would match every message, also one carrying headers
        # the test meant to rule out.
        raise ValueError(
            f"{caller}: headers={{}} would match every message (headers= lists the headers "
            "a message must include); name the headers to check, e.g. headers={'tenant': 'eu'}"
        )
    if key == "serializer":
        from kombu.serialization import registry

        if value not in registry.name_to_type:
            known = ", ".join(sorted(registry.name_to_type))
            raise ValueError(f"{caller}: unknown serializer {value!r}; registered: {known}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _aware(value: datetime, record: SentTask) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=record.app.timezone)
    return value


# -- the query ---------------------------------------------------------------------------
@dataclass
class Query:
    """What a test expects of a message: task name, args, kwargs and options."""

    name: str | None
    args: tuple[Any, ...] | None
    kwargs: dict[str, Any] | None
    options: dict[str, Any]

    @classmethod
    def build(
        cls, task: Any, args: Any, kwargs: Any, options: dict[str, Any], sent: Iterable[SentTask],
        caller: str = "filter()",
    ) -> Query:  # fmt: skip
        """Validate the inputs (``TypeError``/``ValueError`` naming the mistake)."""
        __tracebackhide__ = True
        name = None if task is None else _task_name(task, sent, caller)
        if args is not None:
            if isinstance(args, (str, bytes)):
                raise TypeError(
                    f"{caller}: args must be a tuple or list of positional arguments, got "
                    f"the {type(args).__name__} {args!r}; write args=({args!r},)"
                )
            if isinstance(args, Mapping):
                raise TypeError(
                    f"{caller}: args must be a tuple or list of positional arguments, got a "
                    f"{type(args).__name__} {args!r}; keyword arguments go in kwargs="
                )
            if not isinstance(args, (tuple, list)):
                raise TypeError(
                    f"{caller}: args must be a tuple or list, got {type(args).__name__}: {args!r}"
                )
            args = tuple(args)
        if kwargs is not None:
            if not isinstance(kwargs, Mapping):
                raise TypeError(
                    f"{caller}: kwargs must be a dict of keyword arguments, got "
                    f"{type(kwargs).__name__}: {kwargs!r}"
                )
            kwargs = dict(kwargs)
        for key, value in options.items():
            if key not in _CHECKS:
                close = difflib.get_close_matches(key, OPTIONS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(
                    f"{caller}: unknown option {key!r}{hint}; valid options are: "
                    f"{', '.join(OPTIONS)}"
                )
            _check_option_value(key, value, caller)
        return cls(name, args, kwargs, dict(options))

    def differences(self, record: SentTask) -> list[tuple[str, str]]:
        """``(expected, sent)`` descriptions of every way ``record`` does not match."""
        diffs: list[tuple[str, str]] = []
        if self.name is not None and record.name != self.name:
            diffs.append((f"task {self.name!r}", f"task {record.name!r}"))
        if self.args is not None:
            args = record.args
            if not _same_arguments(list(self.args), list(args), record):
                note = type_note(self.args, args)
                diffs.append((f"args={self.args!r}", f"args={args!r}{note}"))
        if self.kwargs is not None:
            kwargs = record.kwargs
            if not _same_arguments(self.kwargs, kwargs, record):
                note = type_note(self.kwargs, kwargs)
                diffs.append((f"kwargs={self.kwargs!r}", f"kwargs={kwargs!r}{note}"))
        for key, expected in self.options.items():
            sent = _CHECKS[key](record, expected)
            if sent is not None:
                diffs.append((f"{key}={expected!r}", sent))
        return diffs

    def matches(self, record: SentTask) -> bool:
        return not self.differences(record)

    def describe(self) -> str:
        parts = []
        if self.args is not None:
            parts.append(f"args={self.args!r}")
        if self.kwargs is not None:
            parts.append(f"kwargs={self.kwargs!r}")
        parts.extend(f"{k}={v!r}" for k, v in self.options.items())
        return f" with {', '.join(parts)}" if parts else ""


def _same_arguments(expected: Any, actual: Any, record: SentTask) -> bool:
    """Arguments (a list, or a dict) compared as their own types, as a worker decodes
    them (a held message is decoded already; a delivered one kept the caller's objects)."""
    return same_value(expected, actual, record.serializer, decoded=record.held)


def _task_name(task: Any, sent: Iterable[SentTask], caller: str) -> str:
    __tracebackhide__ = True
    from celery import Task
    from celery.local import Proxy

    if isinstance(task, Proxy):
        task = task._get_current_object()
    if isinstance(task, Task):
        return str(task.name)
    if not isinstance(task, str):
        raise TypeError(
            f"{caller}: expected a Celery task or a task name (str), got "
            f"{type(task).__name__}: {task!r}"
        )
    if not task:
        raise ValueError(f"{caller}: task name must not be empty")
    sent_names = {r.name for r in sent}
    hint = unknown_name_hint(task, sent_names, sent_names)
    if hint is not None:
        raise ValueError(
            f"{caller}: no task named {task!r} is registered on any Celery app or was sent "
            f"in this test{hint}"
        )
    return task
