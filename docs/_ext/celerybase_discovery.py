"""What the plugin defines, found by asking the plugin itself (no Sphinx needed).

Used by the manual's Sphinx extension (``celerybase_docs``) to list fixtures, ini keys,
options, markers and environment variables, and by ``tests/test_docs.py`` to check those
lists against what pytest reports.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

PLUGIN = "pytest_celerybase.plugin"
PACKAGE = "pytest_celerybase"
#: Where a class is documented under its public name, first match wins.
PUBLIC_MODULES = ("pytest_celerybase", "pytest_celerybase.bases")


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class FixtureDoc:
    name: str
    scope: str
    autouse: bool
    doc: str
    requests: tuple[str, ...]
    gives: str | None  # the annotation as written, e.g. "Generator[LiveWorker, None, None]"
    gives_target: str | None  # dotted name of the given class, when it can be resolved
    module: str


def _fixture_marker(obj: Any) -> Any:
    # pytest >= 8.4 wraps fixtures in FixtureFunctionDefinition; older versions mark the
    # function with ``_pytestfixturefunction``.
    return getattr(obj, "_fixture_function_marker", None) or getattr(
        obj, "_pytestfixturefunction", None
    )


def _type_checking_namespace(module: ModuleType) -> dict[str, Any]:
    """The module's globals plus the names its ``if TYPE_CHECKING:`` block imports."""
    namespace = dict(vars(module))
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return namespace
    for node in tree.body:
        test = node.test if isinstance(node, ast.If) else None
        name = getattr(test, "id", None) or getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            imports = [n for n in node.body if isinstance(n, ast.Import | ast.ImportFrom)]
            code = compile(ast.Module(body=imports, type_ignores=[]), module.__name__, "exec")
            exec(code, namespace)
    return namespace


def _given_type(annotation: str) -> str:
    """``Iterator[X]`` / ``Generator[X, ...]`` -> ``X``: what the test receives."""
    try:
        expr = ast.parse(annotation, mode="eval").body
    except SyntaxError:
        return annotation
    if isinstance(expr, ast.Subscript):
        outer = ast.unparse(expr.value).rsplit(".", 1)[-1]
        if outer in ("Iterator", "Generator", "AsyncIterator", "AsyncGenerator"):
            inner = expr.slice
            first = inner.elts[0] if isinstance(inner, ast.Tuple) else inner
            return ast.unparse(first)
    return annotation


def public_name(obj: Any) -> str | None:
    """The dotted name under which the reference documents ``obj`` (class or function)."""
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if not qualname or not module:
        return None
    candidates = list(PUBLIC_MODULES) if module.startswith(PACKAGE) else []
    # Other projects' classes by their shortest importable name (celery.Celery, not
    # celery.app.base.Celery).
    parts = module.split(".")
    candidates += [".".join(parts[:i]) for i in range(1, len(parts))]
    for public in candidates:
        try:
            if getattr(importlib.import_module(public), qualname, None) is obj:
                return f"{public}.{qualname}"
        except ImportError:
            continue
    return f"{module}.{qualname}"


def is_ours_unexported(target: str | None) -> bool:
    """A class of this package that no public module exports (documented in place)."""
    return bool(target and target.startswith(f"{PACKAGE}.")) and not any(
        target == f"{public}.{target.rsplit('.', 1)[1]}" for public in PUBLIC_MODULES
    )


def discover_fixtures(module_name: str = PLUGIN) -> list[FixtureDoc]:
    """The public fixtures pytest finds in ``module_name``'s namespace, sorted by name."""
    module = importlib.import_module(module_name)
    found: list[FixtureDoc] = []
    for attr, obj in vars(module).items():
        marker = _fixture_marker(obj)
        if marker is None:
            continue
        name = getattr(marker, "name", None) or attr
        if name.startswith("_"):
            continue
        func = inspect.unwrap(getattr(obj, "_fixture_function", obj))
        defined_in = importlib.import_module(func.__module__)
        annotation = func.__annotations__.get("return")
        gives = _given_type(annotation) if isinstance(annotation, str) else None
        if annotation is not None and not isinstance(annotation, str):
            gives = inspect.formatannotation(annotation)
        target = None
        if gives is not None:
            try:
                resolved = eval(gives, _type_checking_namespace(defined_in))
            except Exception:
                resolved = None
            if inspect.isclass(resolved):
                target = public_name(resolved)
        params = [
            p for p in inspect.signature(func).parameters if p not in ("request", "self")
        ]
        scope = getattr(marker, "scope", "function")
        found.append(
            FixtureDoc(
                name=name,
                scope=scope if isinstance(scope, str) else "dynamic",
                autouse=bool(getattr(marker, "autouse", False)),
                doc=inspect.getdoc(func) or "",
                requests=tuple(params),
                gives=gives,
                gives_target=target,
                module=func.__module__,
            )
        )
    return sorted(found, key=lambda f: f.name)


@dataclass
class IniDoc:
    name: str
    help: str
    type: str | None
    default: Any


@dataclass
class OptionDoc:
    flags: tuple[str, ...]
    help: str
    default: Any
    metavar: str | None
    takes_value: bool


@dataclass
class RecordingParser:
    """Stands in for pytest's ``Parser``: records ``addini`` and ``addoption`` calls."""

    ini: list[IniDoc] = field(default_factory=list)
    options: list[OptionDoc] = field(default_factory=list)

    def addini(
        self, name: str, help: str, type: str | None = None, default: Any = None, **_: Any
    ) -> None:
        self.ini.append(IniDoc(name, help, type, default))

    def addoption(self, *flags: str, **attrs: Any) -> None:
        action = attrs.get("action", "store")
        self.options.append(
            OptionDoc(
                flags=flags,
                help=attrs.get("help", ""),
                default=attrs.get("default"),
                metavar=attrs.get("metavar"),
                takes_value=action in ("store", "append", None),
            )
        )

    _addoption = addoption

    def getgroup(self, name: str, description: str = "", after: str | None = None) -> Any:
        return self


def _call_hook(hook: Callable[..., Any], **available: Any) -> None:
    wanted = inspect.signature(hook).parameters
    hook(**{name: value for name, value in available.items() if name in wanted})


def discover_settings(module_name: str = PLUGIN) -> RecordingParser:
    """The ini keys and options the plugin's ``pytest_addoption`` adds."""
    module = importlib.import_module(module_name)
    parser = RecordingParser()
    hook = getattr(module, "pytest_addoption", None)
    if hook is not None:
        _call_hook(hook, parser=parser, pluginmanager=SimpleNamespace())
    return parser


class _RecordingConfig:
    """Stands in for pytest's ``Config`` in ``pytest_configure``: records marker lines."""

    def __init__(self, settings: RecordingParser) -> None:
        import pytest

        self.lines: dict[str, list[str]] = {}
        self.stash = pytest.Stash()
        self.option = argparse.Namespace()
        self._cleanups: list[Callable[[], Any]] = []
        self._ini = {i.name: i.default for i in settings.ini}
        for opt in settings.options:
            dest = opt.flags[-1].lstrip("-").replace("-", "_")
            setattr(self.option, dest, opt.default)
        self.pluginmanager = SimpleNamespace(
            register=lambda *a, **k: None,
            hasplugin=lambda name: False,
            unregister=lambda *a, **k: None,
        )

    def addinivalue_line(self, name: str, line: str) -> None:
        self.lines.setdefault(name, []).append(line)

    def getini(self, name: str) -> Any:
        return self._ini.get(name, "")

    def getoption(self, name: str, default: Any = None, skip: bool = False) -> Any:
        return getattr(self.option, name.lstrip("-").replace("-", "_"), default)

    def add_cleanup(self, func: Callable[[], Any]) -> None:
        self._cleanups.append(func)

    def issue_config_time_warning(self, warning: Warning, stacklevel: int) -> None:
        pass

    def close(self) -> None:
        while self._cleanups:
            self._cleanups.pop()()


def discover_markers(module_name: str = PLUGIN) -> list[tuple[str, str]]:
    """``(signature, description)`` of each marker the plugin's ``pytest_configure`` adds."""
    module = importlib.import_module(module_name)
    config = _RecordingConfig(discover_settings(module_name))
    hook = getattr(module, "pytest_configure", None)
    if hook is None:
        return []
    _call_hook(hook, config=config)
    try:
        unconfigure = getattr(module, "pytest_unconfigure", None)
        if unconfigure is not None:
            _call_hook(unconfigure, config=config)
    finally:
        config.close()
    markers = []
    for line in config.lines.get("markers", []):
        signature, _, description = line.partition(":")
        markers.append((signature.strip(), description.strip()))
    return markers


@dataclass(frozen=True)
class EnvVarDoc:
    name: str
    doc: str
    module: str
    constant: str


def package_modules(package: str = PACKAGE) -> Iterator[ModuleType]:
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        yield importlib.import_module(info.name)


def discover_env_vars(package: str = PACKAGE) -> list[EnvVarDoc]:
    """Module constants ``*_ENV = "CELERYBASE_..."`` and their ``#:`` comments."""
    found: dict[str, EnvVarDoc] = {}
    for module in package_modules(package):
        for const, value in vars(module).items():
            if not (const.endswith("_ENV") and isinstance(value, str)):
                continue
            if not value.startswith("CELERYBASE_"):
                continue
            doc = attribute_comments(module).get(const, "")
            if doc or value not in found:
                found[value] = EnvVarDoc(value, doc, module.__name__, const)
    return sorted(found.values(), key=lambda e: e.name)


def attribute_comments(module: ModuleType) -> dict[str, str]:
    """The ``#:`` comment lines right above each module-level assignment."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    docs: dict[str, str] = {}
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        comment: list[str] = []
        row = node.lineno - 2
        while row >= 0 and lines[row].startswith("#:"):
            comment.insert(0, lines[row][2:].strip())
            row -= 1
        for name in names:
            if comment:
                docs[name] = " ".join(comment)
    return docs
