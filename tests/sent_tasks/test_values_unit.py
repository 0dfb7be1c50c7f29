"""How a sent value is compared (sent_tasks/values.py): types at every depth, the
serializer's round trip, and the note a failure shows when only the types differ."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_celerybase.sent_tasks.values import same_value, strictly_equal, type_note

NAN = float("nan")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1),
        ("x", "x"),
        (None, None),
        ([1, (2, True)], [1, (2, True)]),
        ({"a": [1.5]}, {"a": [1.5]}),
        ({True: 1}, {True: 1}),
        ({1, "x"}, {"x", 1}),
        (frozenset({False}), frozenset({False})),
        (NAN, NAN),
        ([NAN], [NAN]),
    ],
)
def test_strictly_equal(a: Any, b: Any) -> None:
    assert strictly_equal(a, b)
    assert strictly_equal(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (True, 1),
        (1, 1.0),
        (False, 0),
        (0, 0.0),
        ([1, [2, True]], [1, [2, 1]]),
        ((1, 2), [1, 2]),  # a tuple is not a list where the worker gets one
        ({"k": 0}, {"k": False}),
        ({True: "a"}, {1: "a"}),  # the same dict key for ==, not the same type
        ({1}, {True}),
        ({1, 2}, {1, 2, 3}),
        ({"a": 1}, {"a": 1, "b": 2}),
        ([1], [1, 1]),
        (NAN, 1.0),
    ],
)
def test_not_strictly_equal(a: Any, b: Any) -> None:
    assert not strictly_equal(a, b)
    assert not strictly_equal(b, a)


def test_an_odd_eq_is_not_equal() -> None:
    class Odd:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no")

        __hash__ = object.__hash__

    assert not strictly_equal(Odd(), Odd())


def test_same_value_allows_only_the_serializers_round_trip() -> None:
    # Held (decoded): what the caller wrote, tripped, against what the worker decodes.
    assert same_value([(1, 2)], [[1, 2]], "json", decoded=True)
    assert same_value({"k": {1: "a"}}, {"k": {"1": "a"}}, "json", decoded=True)
    assert not same_value([(1, True)], [[1, 1]], "json", decoded=True)
    # Delivered (the caller's objects): both sides tripped.
    assert same_value([[1, 2]], [(1, 2)], "json", decoded=False)
    assert not same_value([[1, 2.0]], [(1, 2)], "json", decoded=False)
    # pickle keeps tuples: a list is another type there.
    assert same_value([(1, 2)], [(1, 2)], "pickle", decoded=True)
    assert not same_value([[1, 2]], [(1, 2)], "pickle", decoded=True)
    # No serializer known, or a value it cannot encode: only the strict comparison.
    assert not same_value([(1, 2)], [[1, 2]], None, decoded=True)
    assert not same_value([{1, 2}], [[1, 2]], "json", decoded=True)


def test_type_note_names_the_first_pair_that_differs_only_by_type() -> None:
    assert type_note((True,), (1,)) == (
        " (equal with ==, but the message has 1, an int, where True, a bool, was expected)"
    )
    assert "the message has 2, an int, where 2.0, a float" in type_note(
        {"o": [{"q": 2.0}]}, {"o": [{"q": 2}]}
    )
    assert "0, an int, where False, a bool" in type_note([(False, 1)], [[0, 1]])
    assert type_note((2,), (1,)) == ""  # another value, not another type
    assert type_note((1, 2), (1,)) == ""
