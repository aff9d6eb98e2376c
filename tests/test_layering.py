"""The layering STYLE.md asks for, checked on the source so that it cannot regress.

Modules are placed in layers by package prefix (no hand-kept module lists), and:

* imports run downward: cli -> api -> {frontend, passes, backends, analysis} -> rulesets ->
  the model modules (``ir``, ``flows``, ``snapshot``, ``errors``, ``targets``...) -> grammar;
* the judges are independent: ``analysis`` and ``rulesets`` never import ``backends`` or
  ``passes``, ``rulesets`` never import ``analysis``; a backend may import its own target's
  ruleset ``syntax`` module, nothing else of the judge;
* no target knows another (``backends.<t>`` never imports ``backends.<u>``, nor
  ``rulesets.<t>`` ``rulesets.<u>``);
* only the face (``npc/__init__``, ``api``, ``cli``) imports the frontend, even indirectly;
* target names appear only in the registry and in that target's own packages; the registry
  tells the truth (settings, ``applies``, judges); a backend refuses options of another type;
* no module is over 600 lines;
* IR, snapshot and options objects are frozen dataclasses (options travel frozen);
* no module-level mutable state: no ``global``, no function mutating a module-level dict,
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
from types import MappingProxyType

import pytest

from npc import errors, ir, snapshot
from npc.backends.base import Backend, BackendOptions
from npc.targets import REGISTRY, TARGET_SETTINGS, get_backend

ROOT = Path(__file__).resolve().parent.parent
#: Source folder -> import name (as pyproject's package-dir maps them).
FOLDERS = {"compiler": "npc", "backends": "npc.backends", "grammar": "npc.grammar"}

#: Layers by package prefix, first match wins; every other module is a model module
#: (``ir``, ``flows``, ``snapshot``, ``errors``, ``targets``, ``resolve``, ...).
LAYERS = (
    ("npc.cli", "face"),
    ("npc.api", "face"),
    ("npc.__main__", "face"),
    ("npc.frontend", "frontend"),
    ("npc.passes", "passes"),
    ("npc.backends", "backends"),
    ("npc.analysis", "analysis"),
    ("npc.rulesets", "rulesets"),
    ("npc.grammar", "grammar"),
)
#: What each layer may import besides itself (STYLE.md, "Who may know whom"): imports run
#: downward, cli -> api -> {frontend, passes, backends, analysis} -> rulesets -> the model
#: modules -> grammar. Backends reach rulesets only through a target's ``syntax`` module
#: (checked separately), and the judges (analysis, rulesets) never see backends or passes.
MAY_IMPORT = MappingProxyType(
    {
        "face": frozenset({"frontend", "passes", "backends", "analysis", "rulesets", "model"}),
        "frontend": frozenset({"rulesets", "model", "grammar"}),
        "passes": frozenset({"rulesets", "model"}),
        "backends": frozenset({"model", "grammar"}),
        "analysis": frozenset({"rulesets", "model", "grammar"}),
        "rulesets": frozenset({"model", "grammar"}),
        "model": frozenset({"grammar"}),
        "grammar": frozenset(),
    }
)
#: The one upward edge: the registry annotates with the Backend contract (a type-only
#: import; it names emitters by string and imports them lazily).
TYPE_ONLY = frozenset({("npc.targets", "npc.backends.base")})
#: The table of network plugins (``--cni``): a plugin may share a target's name.
PLUGIN_TABLE = "npc.analysis.cni"
#: Functions allowed a process-wide ``functools.cache``: pure loaders of package data.
CACHED_LOADERS = {("npc.grammar", "parser")}
MAX_LINES = 600


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


def layer(module: str) -> str:
    for prefix, name in LAYERS:
        if _within(module, (prefix,)):
            return name
    return "face" if module == "npc" else "model"


def target_of(module: str) -> tuple[str, str] | None:
    """(``backends`` or ``rulesets``, target) for a module inside one target's package."""
    for kind in ("backends", "rulesets"):
        parts = module.split(".")
        if len(parts) >= 3 and parts[:2] == ["npc", kind]:
            package = ".".join(parts[:3])
            if package in MODULES and MODULES[package].name == "__init__.py":
                return kind, parts[2]
    return None


def test_the_module_map_is_complete() -> None:
    """Guard against a vacuous check: the walk sees the modules the rules are about."""
    for name in ("npc.frontend.bundle", "npc.api", "npc.cli.app", "npc.ir", "npc.targets"):
        assert name in MODULES, name
    assert "npc.ir" in IMPORTS["npc.backends.nft.backend"]
    assert "npc.frontend.k8s.api" in _reachable("npc.frontend.bundle")
    assert target_of("npc.backends.nft.plan") == ("backends", "nft")
    assert target_of("npc.rulesets.calico.model") == ("rulesets", "calico")
    assert target_of("npc.backends.grants") is None
    assert {layer(m) for m in MODULES} == {*MAY_IMPORT}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module: str) -> None:
    mine = layer(module)
    bad = [
        dep
        for dep in sorted(IMPORTS[module])
        if layer(dep) != mine
        and layer(dep) not in MAY_IMPORT[mine]
        and (module, dep) not in TYPE_ONLY
        and not _backend_uses_own_syntax(module, dep)
    ]
    assert not bad, f"{module} ({mine}) may not import: {', '.join(bad)}"


def _backend_uses_own_syntax(module: str, dep: str) -> bool:
    """A backend may import its own target's ruleset ``syntax`` module (lexical facts such
    as quoting), nothing else of the judge."""
    mine = target_of(module)
    return mine is not None and mine[0] == "backends" and dep == f"npc.rulesets.{mine[1]}.syntax"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if target_of(m) is not None))
def test_no_target_knows_another(module: str) -> None:
    _kind, target = target_of(module) or ("", "")
    others = [
        dep
        for dep in sorted(IMPORTS[module])
        if (found := target_of(dep)) is not None and found[1] != target
    ]
    assert not others, f"{module} (target {target}) imports another target: {others}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_face_imports_the_frontend(module: str) -> None:
    """Not even indirectly: nothing outside the frontend and the face reaches it."""
    if layer(module) in ("face", "frontend"):
        return
    chains = _reachable(module)
    bad = [" -> ".join(c) for dep, c in sorted(chains.items()) if layer(dep) == "frontend"]
    assert not bad, "the frontend is reached from below:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_the_size_limit(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (split it by topic)"


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
    "module", sorted(m for m in MODULES if m not in ("npc.targets", PLUGIN_TABLE))
)
def test_target_names_appear_only_in_the_registry(module: str) -> None:
    """... and in the target's own packages (``backends.<t>``, ``rulesets.<t>``)."""
    own = target_of(module)
    spelled = [
        f"{MODULES[module].name}:{c.lineno}: {c.value!r}"
        for c in _code_strings(TREES[module])
        if c.value in REGISTRY and (own is None or own[1] != c.value)
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


@pytest.mark.parametrize("target", sorted(REGISTRY))
def test_the_registry_tells_the_truth(target: str) -> None:
    """Each entry's settings are exactly its options' fields, it applies exactly when its
    backend implements ``apply``, and the judge it names exists."""
    entry = REGISTRY[target]
    backend = get_backend(target)
    assert set(entry.settings) == {f.name for f in dataclasses.fields(backend.options_type)}
    assert entry.applies == (type(backend).apply is not Backend.apply)
    if entry.reader is not None:
        assert entry.reader in MODULES, f"{target}: no judge module {entry.reader}"
        assert target_of(entry.reader) == ("rulesets", target)


def test_a_backend_refuses_options_of_another_type() -> None:
    for target in sorted(REGISTRY):
        backend = get_backend(target)
        if backend.options_type is BackendOptions:
            continue
        with pytest.raises(TypeError, match=backend.options_type.__name__):
            backend.emit(ir.PolicySet(), snapshot.Snapshot(), BackendOptions())


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
