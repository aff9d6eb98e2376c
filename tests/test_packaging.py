"""The wheel ships exactly one top-level package, ``npc``, with its data files."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import npc

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("*.whl")
    return found


def test_the_distribution_is_npc_netpol_and_knows_its_version(wheel: Path) -> None:
    """`npc` on PyPI is another project: ours is `npc-netpol`, importing as `npc`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "npc-netpol"
    assert wheel.name == f"npc_netpol-{project['version']}-py3-none-any.whl"
    assert npc.__version__ == project["version"]
    assert set(project["scripts"]) == {"npc", "kubectl-npc"}


def test_only_npc_is_top_level(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"npc"}


def test_data_files_are_inside(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "npc/py.typed" in names
    assert any(n.startswith("npc/grammar/") and n.endswith(".lark") for n in names)
    template_dir = ROOT / "backends" / "templates"
    for template in template_dir.glob("*.j2"):
        assert f"npc/backends/templates/{template.name}" in names
    report_templates = sorted((ROOT / "compiler" / "analysis" / "templates").glob("*.j2"))
    assert report_templates
    for template in report_templates:
        assert f"npc/analysis/templates/{template.name}" in names
    for sub in (
        "npc/backends/__init__.py",
        "npc/grammar/__init__.py",
        "npc/frontend/k8s/__init__.py",
        "npc/analysis/__init__.py",
        "npc/rulesets/calico/__init__.py",
        "npc/backends/nft/__init__.py",
        "npc/cli/__init__.py",
        "npc/passes/__init__.py",
    ):
        assert sub in names


def test_every_source_file_is_inside(wheel: Path) -> None:
    """Derived from the source folders, so a new subpackage or data file cannot be forgotten
    (the list above misses any subpackage added later)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    folders = {"compiler": "npc", "backends": "npc/backends", "grammar": "npc/grammar"}
    missing = []
    for folder, package in folders.items():
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".lark", ".j2", ".typed") and "__pycache__" not in path.parts:
                shipped = f"{package}/{path.relative_to(ROOT / folder).as_posix()}"
                if shipped not in names:
                    missing.append(shipped)
    assert not missing, f"not in the wheel: {missing}"


def test_no_source_folders_leak(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert not [
        n
        for n in names
        if n.startswith(("compiler/", "backends/", "grammar/", "tests/", "golden/"))
    ]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_declared_dependency_is_pinned() -> None:
    """constraints.txt, the exact versions that `.ci/run` and the README install, covers every
    dependency pyproject.toml declares: one added without regenerating the pins fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    wanted = {_normalized(m[0]) for m in (re.match(r"[A-Za-z0-9._-]+", d) for d in declared) if m}
    text = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    pinned = {_normalized(m[1]) for m in re.finditer(r"^([A-Za-z0-9._-]+)==\S+$", text, re.M)}
    assert wanted and not wanted - pinned, sorted(wanted - pinned)
