"""The layering STYLE.md asks for, checked on the source so that it cannot regress.

* Backends never import the frontend (not even through another module): they take IR and
  the snapshot and return text.
* The frontend knows no backend. Only the library API (``npc.api``) and the CLI reach the
  backends, and only through the registry (``npc.backends``) and the contract
  (``npc.backends.base``), never a backend module by name.
* Target names appear only in the registry: no code outside ``backends/`` spells one, each
  registered backend calls itself by the name it is registered under, and the settings the
  CLI offers for targets are the registry's, matching the backends' options types.
* IR, snapshot and options objects are frozen dataclasses (options travel frozen).
* No module-level mutable state: no ``global``, no function mutating a module-level dict,
  list or set, no public module-level dict, list or set (an importer could change it: use a
  ``MappingProxyType``, tuple or frozenset), and ``functools.cache`` only on the pure loaders
  listed here.

Imports are read from the AST (``import``/``from ... import`` anywhere in a module, type-only
imports included), so the check needs no import side effects and sees every dependency.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from npc import errors, ir, snapshot
from npc.targets import REGISTRY, TARGET_SETTINGS, get_backend

ROOT = Path(__file__).resolve().parent.parent
#: Source folder -> import name (as pyproject's package-dir maps them).
FOLDERS = {"compiler": "npc", "backends": "npc.backends", "grammar": "npc.grammar"}

#: The frontend: reading, decoding, validating and lowering input. ``npc`` itself (the
#: package's ``__init__``) and ``npc.api`` load input too, and the CLI reads files.
FRONTEND = (
    "npc.frontend",
    "npc.frontend.k8s",
    "npc.frontend.source",
    "npc.frontend.yamlread",
    "npc.frontend.decode",
    "npc.frontend.lower",
    "npc.frontend.positions",
    "npc.frontend.inputs",
)
LIBRARY_AND_CLI = ("npc", "npc.api", "npc.cli")
#: What may import the backends package, and which of its modules it may name.
BACKEND_USERS = ("npc.api", "npc.cli", "npc.__main__", "npc.targets")
BACKEND_ENTRY = ("npc.backends", "npc.backends.base")
#: Functions allowed a process-wide ``functools.cache``: pure loaders of package data.
CACHED_LOADERS = {("npc.grammar", "parser")}


def _module_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _module_files()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _imports(tree: ast.Module) -> set[str]:
    """The ``npc`` modules a module imports (``from npc import ir`` is ``npc.ir``)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if _within(a.name, ("npc",)))
        elif isinstance(node, ast.ImportFrom) and node.module and _within(node.module, ("npc",)):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
    return out


IMPORTS = {name: _imports(tree) for name, tree in TREES.items()}


def _reachable(start: str) -> dict[str, list[str]]:
    """Every module ``start`` imports, directly or not, with one import chain to it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for dep in sorted(IMPORTS.get(current, ())):
            if dep not in chains:
                chains[dep] = [*chains[current], dep]
                todo.append(dep)
    return chains


def test_the_module_map_is_complete() -> None:
    """Guard against a vacuous check: the walk sees the modules the rules are about."""
    for name in (*FRONTEND[:3], "npc.api", "npc.cli.app", "npc.ir", "npc.backends.nft.backend"):
        assert name in MODULES, name
    assert "npc.ir" in IMPORTS["npc.backends.nft.backend"]
    assert "npc.frontend.k8s.api" in _reachable("npc.frontend")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _within(m, ("npc.backends",))))
def test_backends_never_import_the_frontend(module: str) -> None:
    chains = _reachable(module)
    bad = [
        " -> ".join(chain)
        for dep, chain in sorted(chains.items())
        if _within(dep, FRONTEND) or dep in LIBRARY_AND_CLI or _within(dep, ("npc.cli",))
    ]
    assert not bad, "a backend reaches the frontend:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "module",
    sorted(m for m in MODULES if m != "npc" and not _within(m, ("npc.backends", *BACKEND_USERS))),
)
def test_only_the_api_and_cli_reach_the_backends(module: str) -> None:
    chains = _reachable(module)
    bad = [
        " -> ".join(chain)
        for dep, chain in sorted(chains.items())
        if _within(dep, ("npc.backends",))
    ]
    assert not bad, "the frontend (or a shared module) knows a backend:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m == "npc" or _within(m, BACKEND_USERS))
)
def test_backends_are_reached_through_the_registry(module: str) -> None:
    named = sorted(d for d in IMPORTS[module] if _within(d, ("npc.backends",)))
    assert set(named) <= set(BACKEND_ENTRY), f"{module} imports a backend by name: {named}"


def _code_strings(tree: ast.Module) -> Iterator[ast.Constant]:
    """String constants that are not docstrings."""
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if not _within(m, ("npc.backends", "npc.targets")))
)
def test_target_names_appear_only_in_the_registry(module: str) -> None:
    """...and in the target's own packages: a judge ``npc.rulesets.<t>`` may spell ``t``
    (its grammar is ``<t>.lark``)."""
    spelled = [
        f"{MODULES[module].name}:{c.lineno}: {c.value!r}"
        for c in _code_strings(TREES[module])
        if c.value in REGISTRY and not _within(module, (f"npc.rulesets.{c.value}",))
    ]
    assert not spelled, f"{module} names a target (dispatch through the registry):\n" + "\n".join(
        spelled
    )


@pytest.mark.parametrize("target", sorted(REGISTRY))
def test_each_backend_is_registered_under_its_own_name(target: str) -> None:
    backend = get_backend(target)
    assert backend.name == target
    assert (type(backend).__doc__ or "").strip(), f"backend {target} has no docstring"


def test_target_settings_match_the_backends_options() -> None:
    """Every options field of every target is a declared setting (so the CLI can set it),
    every declared setting is taken by some target, and declared choices are accepted."""
    declared = {s.name: s for s in TARGET_SETTINGS}
    taken: set[str] = set()
    for target in sorted(REGISTRY):
        backend = get_backend(target)
        fields = {f.name for f in dataclasses.fields(backend.options_type)}
        assert fields <= set(declared), f"{target}: options not declared: {fields - set(declared)}"
        taken |= fields
        for name in sorted(fields):
            for choice in declared[name].choices:
                backend.make_options({name: choice})
    assert set(declared) == taken, f"settings no target takes: {set(declared) - taken}"


@pytest.mark.parametrize("module", [ir, snapshot, errors], ids=lambda m: m.__name__)
def test_ir_and_snapshot_objects_are_frozen(module: object) -> None:
    classes = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == module.__name__
    ]
    assert len(classes) >= 3
    thawed = [c.__name__ for c in classes if not c.__dataclass_params__.frozen]
    assert not thawed, f"mutable dataclasses: {thawed}"


@pytest.mark.parametrize("target", sorted(REGISTRY))
def test_options_are_frozen(target: str) -> None:
    options_type = get_backend(target).options_type
    assert options_type.__dataclass_params__.frozen


_MUTATORS = frozenset(
    {"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "clear",
     "remove", "discard", "sort", "reverse", "__setitem__", "__delitem__"}
)  # fmt: skip


def _module_containers(tree: ast.Module) -> set[str]:
    """Module-level names bound to a dict, list or set."""
    names: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        mutable = isinstance(
            value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp
        ) or (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter"}
        )
        if mutable:
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_level_mutable_state(module: str) -> None:
    tree = TREES[module]
    containers = _module_containers(tree)
    found = [f"{name} is public and mutable" for name in sorted(containers) if name[0] != "_"]
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"line {node.lineno}: global {', '.join(node.names)}")
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Store | ast.Del)
            and isinstance(node.value, ast.Name)
            and node.value.id in containers
        ):
            found.append(f"line {node.lineno}: {node.value.id}[...] assigned")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in containers
            and node.func.attr in _MUTATORS
        ):
            found.append(f"line {node.lineno}: {node.func.value.id}.{node.func.attr}()")
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            if node.target.id in containers:
                found.append(f"line {node.lineno}: {node.target.id} updated in place")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                text = ast.unparse(deco)
                if "cache" in text and (module, node.name) not in CACHED_LOADERS:
                    found.append(f"line {node.lineno}: @{text} on {node.name}")
    assert not found, f"{module} keeps module-level state:\n" + "\n".join(found)


RULESETS = sorted(m for m in MODULES if _within(m, ("npc.rulesets",)))


@pytest.mark.parametrize("module", RULESETS)
def test_judges_are_independent(module: str) -> None:
    """A judge never shares code with what it judges (backends, passes), with the oracle it is
    compared with (analysis), with the frontend, or with another target's judge."""
    assert "npc.rulesets.nft.read" in RULESETS  # not vacuous
    own = module.split(".")[2] if module.count(".") >= 2 else None
    bad = []
    for dep, chain in sorted(_reachable(module).items()):
        other = (
            dep.split(".")[2] if _within(dep, ("npc.rulesets",)) and dep.count(".") >= 2 else None
        )
        if (
            _within(dep, ("npc.backends", "npc.passes", "npc.analysis", *FRONTEND))
            or dep in LIBRARY_AND_CLI
            or (other not in (None, "base") and other != own)
        ):
            bad.append(" -> ".join(chain))
    assert not bad, f"{module} reaches what a judge must not import:\n" + "\n".join(bad)
