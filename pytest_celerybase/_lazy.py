"""Lazy re-exports for the package faces (PEP 562), so importing a face costs nothing.

A face (``pytest_celerybase``, ``pytest_celerybase.recorder``...) lists its public names
and where each is defined; :func:`exports` returns the module ``__getattr__`` that imports
the defining module on first access, and the ``__dir__`` that lists the names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(
    face: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the module ``face`` re-exporting ``names``
    (public name -> defining module, relative to ``pytest_celerybase``)."""
    face_module = importlib.import_module(face)

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is None:
            raise AttributeError(f"module {face!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"pytest_celerybase.{where}"), name)
        setattr(face_module, name, value)  # later lookups are plain module attributes
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(face_module), *names})

    return __getattr__, __dir__
