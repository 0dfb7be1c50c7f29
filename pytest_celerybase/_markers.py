"""Reading the plugin's markers (pytest glue shared by plugin.py and the fixture modules)."""

from __future__ import annotations

from typing import Any

import pytest


def marker_kwargs(node: pytest.Item, name: str, positional_error: str) -> dict[str, Any]:
    """The keyword arguments of every ``name`` marker on ``node``, the closest winning.

    A marker given positional arguments raises ``TypeError(positional_error)``, formatted
    with ``args`` (the positional arguments).
    """
    __tracebackhide__ = True
    kwargs: dict[str, Any] = {}
    # iter_markers yields the closest marker first: it must win, so it goes last.
    for marker in reversed(list(node.iter_markers(name))):
        if marker.args:
            raise TypeError(positional_error.format(args=marker.args))
        kwargs.update(marker.kwargs)
    return kwargs
