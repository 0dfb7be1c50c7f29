"""Which settings a test may give an app, checked (no pytest import).

A setting Celery does not know is stored and then ignored: a typo in
``@pytest.mark.celerybase(...)`` or ``celerybase_config`` would silently test the default
instead.  :func:`validate_config` sorts each key:

* a Celery setting (lowercase, as Celery names them now): accepted;
* a ``celerybase_`` key: one of :data:`PLUGIN_SETTINGS` (read by the plugin or by the
  reference bases), else an error with the closest one;
* any other key close to a Celery setting, compared in lowercase and without a
  ``CELERY_`` prefix (``TASK_ALWAYS_EAGER``, ``CELERY_TASK_ALWAYS_EAGER``,
  ``task_eager_propogates``), or an old-style Celery name (``CELERY_ALWAYS_EAGER``): an
  error naming the setting meant;
* anything else passes through as the app's own setting (``PAYMENTS_API_URL``).

:func:`worker_only` names the settings only a worker reads, which ``eager_app`` (no
worker) must refuse rather than ignore.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from typing import Any

from pytest_celerybase.worker.options import OPTION_KEYS

__all__ = ["BASES_SETTINGS", "MARKER_KEYS", "PLUGIN_SETTINGS", "validate_config", "worker_only"]

_DOCS = "https://docs.celeryq.dev/en/stable/userguide/configuration.html"
#: App settings the reference bases read (``app.conf``), besides their class attributes.
BASES_SETTINGS: tuple[str, ...] = (
    "celerybase_database_url",
    "celerybase_metrics_sink",
    "celerybase_redis_url",
)
#: Marker keys of the plugin's own (``@pytest.mark.celerybase(celerybase_database_urls=...)``).
MARKER_KEYS: tuple[str, ...] = ("celerybase_database_urls",)
#: Every ``celerybase_`` key the marker and ``celerybase_config`` take.
PLUGIN_SETTINGS: tuple[str, ...] = (*OPTION_KEYS, *MARKER_KEYS, *BASES_SETTINGS)
# How close a key must be to a setting to be taken for a misspelling of it.
_CUTOFF = 0.85


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``config`` as a dict; ``TypeError``/``ValueError`` naming a key that looks
    like a misspelled setting (see the module doc for the rule)."""
    if not isinstance(config, Mapping):
        raise TypeError(
            f"Celery config must be a mapping of setting names to values, "
            f"got {type(config).__name__}: {config!r}"
        )
    if not config:
        return {}
    known = _known_settings()
    for key in config:
        if not isinstance(key, str):
            raise TypeError(f"Celery setting names must be str, got {key!r}")
        if key not in known:
            _check_unknown(key, known)
    return dict(config)


def worker_only(settings: Mapping[str, Any]) -> list[str]:
    """The keys of ``settings`` only a worker reads (``worker_*``, ``celerybase_worker_*``)."""
    worker = _worker_settings()
    return [key for key in settings if key in worker or key in OPTION_KEYS]


def _check_unknown(key: str, known: frozenset[str]) -> None:
    lower = key.lower()
    if lower.startswith("celerybase_"):
        if key in PLUGIN_SETTINGS:
            return
        close = difflib.get_close_matches(lower, PLUGIN_SETTINGS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown pytest-celerybase setting {key!r}{hint}; the celerybase_ settings "
            f"are: {', '.join(PLUGIN_SETTINGS)}"
        )
    # Django projects name them CELERY_TASK_ALWAYS_EAGER for config_from_object(namespace=
    # "CELERY"); given here, such a key is stored as it is and never read.
    bare = lower.removeprefix("celery_")
    for candidate in (lower, bare):
        if candidate in known:
            raise ValueError(
                f"{key!r} is not how Celery names the setting: use {candidate!r} (Celery's "
                f"settings are lowercase, without a namespace prefix); see {_DOCS}"
            )
    new_name = _old_settings().get(key)
    if new_name is not None:
        raise ValueError(
            f"{key!r} is an old-style Celery setting name: use {new_name!r} (Celery refuses "
            f"to mix old and new names, and the plugin's defaults use the new ones); see {_DOCS}"
        )
    close = difflib.get_close_matches(lower, known, n=1, cutoff=_CUTOFF) or (
        difflib.get_close_matches(bare, known, n=1, cutoff=_CUTOFF)
    )
    old_close = [] if close else difflib.get_close_matches(key, _old_settings(), n=1,
                                                           cutoff=_CUTOFF)  # fmt: skip
    if old_close:
        close = [_old_settings()[old_close[0]]]
    if close:
        raise ValueError(
            f"unknown Celery setting {key!r} (did you mean {close[0]!r}?); see {_DOCS}"
        )


@functools.cache
def _known_settings() -> frozenset[str]:
    """Every Celery setting name (new style), computed once: validate_config runs per test."""
    from celery.app.defaults import NAMESPACES, flatten

    return frozenset(key for key, _ in flatten(NAMESPACES))


@functools.cache
def _worker_settings() -> frozenset[str]:
    from celery.app.defaults import NAMESPACES, flatten

    return frozenset(key for key, _ in flatten({"worker": NAMESPACES["worker"]}))


@functools.cache
def _old_settings() -> dict[str, str]:
    """Old-style (Celery 3) setting names -> the new ones."""
    from celery.app import defaults

    return dict(defaults._TO_NEW_KEY)
