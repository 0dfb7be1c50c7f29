"""How a value a test expects compares to one a message carries (no pytest import).

``==`` is the wrong test for a testing tool: ``True == 1 == 1.0`` and ``False == 0``, so
``assert_task_sent(t, (True,))`` would pass for ``t.delay(1)``, although the task receives
an ``int``.  :func:`same_value` compares values as their own types at every depth (lists,
tuples, dicts, sets), after the serializer's round trip (what the caller wrote may differ
from what the worker decodes only by that trip: JSON makes tuples lists and dict keys
strings); :func:`type_note` says why two ``==``-equal values did not match.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["same_value", "strictly_equal", "type_note"]


def strictly_equal(a: Any, b: Any) -> bool:
    """``a == b`` with the same type at every depth (``True`` is not ``1``, nor ``1.0``)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(strictly_equal, a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        # ``{True: x}`` and ``{1: x}`` hash alike: compare the keys' types too.
        keys = {key: key for key in b}
        return all(
            key in keys and strictly_equal(key, keys[key]) and strictly_equal(value, b[key])
            for key, value in a.items()
        )
    if isinstance(a, (set, frozenset)):
        rest = list(b)
        for item in a:
            index = next((i for i, other in enumerate(rest) if strictly_equal(item, other)), -1)
            if index < 0:
                return False
            del rest[index]
        return not rest
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # NaN != NaN, yet the message carries the NaN sent
    try:
        return bool(a == b)
    except Exception:  # an odd __eq__: not the same value
        return False


def same_value(expected: Any, actual: Any, serializer: str | None, *, decoded: bool) -> bool:
    """Whether the message value ``actual`` is what ``expected`` asks for.

    ``decoded``: ``actual`` is what a worker decodes (a held message); else it is what the
    caller passed (a delivered message, or headers) and is tripped through the serializer
    too, so both sides are compared as a worker would see them.
    """
    if strictly_equal(expected, actual):
        return True
    trip = _round_trip(serializer)
    if trip is None:
        return False
    try:
        return strictly_equal(trip(expected), actual if decoded else trip(actual))
    except Exception:  # what the serializer cannot encode cannot have been sent as such
        return False


def type_note(expected: Any, actual: Any) -> str:
    """``""``, or why ``expected`` and ``actual`` differ although ``==`` says equal."""
    try:
        # Tuples as lists: the serializer's round trip may explain that difference.
        loosely = bool(_as_lists(expected) == _as_lists(actual))
    except Exception:
        return ""
    if not loosely:
        return ""
    pair = _first_type_difference(expected, actual)
    if pair is None:
        return ""
    want, got = pair
    return (
        f" (equal with ==, but the message has {got!r}, {_a(type(got).__name__)}, "
        f"where {want!r}, {_a(type(want).__name__)}, was expected)"
    )


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _as_lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_as_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_lists(item) for key, item in value.items()}
    return value


def _first_type_difference(a: Any, b: Any) -> tuple[Any, Any] | None:
    """The first pair of ``==``-equal values of other types, depth first."""
    sequences = (list, tuple)
    if isinstance(a, sequences) and isinstance(b, sequences):
        for x, y in zip(a, b, strict=False):  # a length difference has no type note
            found = _first_type_difference(x, y)
            if found is not None:
                return found
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        keys = {key: key for key in b}
        for key, value in a.items():
            if key in keys:
                found = _first_type_difference(key, keys[key]) or _first_type_difference(
                    value, b[key]
                )
                if found is not None:
                    return found
        return None
    if type(a) is not type(b):
        return a, b
    return None


def _round_trip(serializer: str | None) -> Callable[[Any], Any] | None:
    if serializer is None:
        return None
    from kombu import serialization

    dumps: Any = serialization.dumps
    loads: Any = serialization.loads

    def trip(value: Any) -> Any:
        content_type, encoding, data = dumps(value, serializer=serializer)
        return loads(data, content_type, encoding, accept=[content_type])

    return trip
