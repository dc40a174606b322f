"""Layer rules: every import under ``depth_pose_ros/`` and ``training/`` obeys ``docs/architecture.md``.

The rules are read from the "Layers" table of ``docs/architecture.md`` itself (its ``folder`` and
``may import`` columns), so the documented table and the check cannot drift apart, and there is no list
of exceptions here: a violation is fixed in the code or the table is changed (with its reason) in the doc.

Every ``.py`` file is parsed with :mod:`ast` (nothing is imported) and every import is collected, wherever
it sits (module level, inside functions, ``if TYPE_CHECKING``, ``try``): ``import a.b``, ``from a.b import
c``, relative imports (``from . import x``, ``from ..geometry import y``) and ``importlib.import_module``
/ ``__import__`` with a literal module name or an f-string starting with one. Names built at run time from
variables alone are not seen.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "depth_pose_ros"
ARCHITECTURE = REPO / "docs" / "architecture.md"
SCANNED = (REPO / PACKAGE, REPO / "training")

#: The pseudo-layer ``ROS`` of the table: ROS 2 itself (docs/architecture.md, "What the rows mean").
ROS_LAYER = "ROS"
ROS_PACKAGES = frozenset({"rclpy", "rcl_interfaces", "builtin_interfaces", "tf2_ros", "rosbag2_py",
                          "message_filters"})
ROS_SUFFIXES = ("_msgs", "_srvs", "_interfaces")


@dataclass(frozen=True)
class Rules:
    folders: dict[str, str]  # repo-relative path ("depth_pose_ros/utils/", "depth_pose_ros/cli.py") -> layer
    may_import: dict[str, frozenset[str]]  # layer -> the layers it may import


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # absolute dotted name


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_rules(markdown: str) -> Rules:
    """The "Layers" table of docs/architecture.md: layer -> folders and layer -> importable layers."""
    section = markdown.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = _cells(rows[0])
    col = {name: header.index(name) for name in ("layer", "folder", "may import")}
    folders: dict[str, str] = {}
    may_import: dict[str, frozenset[str]] = {}
    for row in rows[2:]:  # after the header and its |---| line
        cells = _cells(row)
        (layer,) = re.findall(r"`([^`]+)`", cells[col["layer"]])
        for folder in re.findall(r"`([^`]+)`", cells[col["folder"]]):
            folders[folder] = layer
        allowed = cells[col["may import"]]
        may_import[layer] = frozenset() if allowed == "nothing" else frozenset(re.findall(r"`([^`]+)`", allowed))
    return Rules(folders, may_import)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(ARCHITECTURE.read_text(encoding="utf-8"))


def python_files() -> list[Path]:
    return sorted(p for root in SCANNED for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(rel: Path) -> str:
    """Dotted module name of a repo-relative file (a package's ``__init__.py``: the package)."""
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _literal_prefix(node: ast.expr) -> Optional[str]:
    """The module name a dynamic import names: a string literal, or the literal head of an f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value.rsplit(".", 1)[0] if "." in head.value else None  # only whole name parts
    return None


def collect_imports(source: str, module: str, is_package: bool) -> list[Import]:
    """Every import in ``source`` (the module ``module``), as absolute module names."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # ``from pkg import name``: name may be a submodule (``from depth_pose_ros import data``).
            found += [Import(node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*"]
            if any(alias.name == "*" for alias in node.names):
                found.append(Import(node.lineno, target))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                target = _literal_prefix(node.args[0])
                if target:
                    found.append(Import(node.lineno, target))
    return found


#: What :func:`layer_of_module` says for a module of the project outside every documented folder.
NO_LAYER = "(in no layer of the table)"


def layer_of_module(module: str, rules: Rules) -> Optional[str]:
    """The layer a module name belongs to: None for the standard library, third-party packages other
    than ROS, and the bare package root (``depth_pose_ros`` / ``depth_pose_ros.__version__``)."""
    parts = module.split(".")
    if parts[0] in ROS_PACKAGES or parts[0].endswith(ROS_SUFFIXES):
        return ROS_LAYER
    if parts[0] not in (PACKAGE, "training"):
        return None
    for depth in range(len(parts), 0, -1):  # the longest documented folder or file holding the module
        stem = "/".join(parts[:depth])
        for candidate in (f"{stem}/", f"{stem}.py"):
            if candidate in rules.folders:
                return rules.folders[candidate]
    if parts in ([PACKAGE], [PACKAGE, "__version__"]):
        return None
    return NO_LAYER


def layer_of_file(rel: Path, rules: Rules) -> Optional[str]:
    """The layer of a repo-relative file; None for the package root ``depth_pose_ros/__init__.py``."""
    return None if rel == Path(PACKAGE, "__init__.py") else layer_of_module(module_name(rel), rules)


def check_file(rel: Path, source: str, rules: Rules) -> list[str]:
    """The layer violations of one file (``rel``: its path relative to the repository)."""
    importer = layer_of_file(rel, rules)
    found = []
    for imp in collect_imports(source, module_name(rel), rel.name == "__init__.py"):
        imported = layer_of_module(imp.module, rules)
        if imported is None or imported == importer:
            continue
        if importer is None:  # the package root imports nothing of the project
            found.append(f"{rel}:{imp.line}: package root -> {imported} ({imp.module})")
        elif imported not in rules.may_import.get(importer, frozenset()):
            found.append(f"{rel}:{imp.line}: {importer} -> {imported} ({imp.module})")
    return found


def test_layers_table_is_complete(rules: Rules) -> None:
    """The table names every layer it allows, and every scanned file lies in one of its folders."""
    layers = set(rules.may_import)
    assert {"utils", "geometry", "data", "nets", "losses", "eval", "pipeline", "commands", "ros",
            "training"} <= layers
    for layer, allowed in rules.may_import.items():
        assert allowed <= layers | {ROS_LAYER}, f"{layer} may import unknown layers {sorted(allowed - layers)}"
        assert layer not in allowed, f"{layer} lists itself"
    rels = [p.relative_to(REPO) for p in python_files()]
    outside = [str(rel) for rel in rels if layer_of_file(rel, rules) == NO_LAYER]
    assert not outside, f"files in no layer of the docs/architecture.md table: {outside}"


def test_collector_sees_every_kind_of_import(rules: Rules) -> None:
    source = '''
import depth_pose_ros.geometry.camera
from depth_pose_ros.nets import model
from depth_pose_ros import eval as evaluation
from . import frame
from ..utils.image import to_gray_u8
import importlib

def later():
    from depth_pose_ros.pipeline.estimator import Estimator
    importlib.import_module(f"depth_pose_ros.commands.{name}")
    try:
        import rclpy
    except ImportError:
        pass
'''
    found = collect_imports(source, "depth_pose_ros.data.reader", is_package=False)
    layers = {(imp.line, layer_of_module(imp.module, rules)) for imp in found}
    assert layers >= {(2, "geometry"), (3, "nets"), (4, "eval"), (5, "data"), (6, "utils"), (10, "pipeline"),
                      (11, "commands"), (13, ROS_LAYER)}
    assert {imp.module for imp in found} >= {"depth_pose_ros.data.frame", "depth_pose_ros.utils.image.to_gray_u8"}


def test_checker_reports_a_violation(rules: Rules) -> None:
    """A forbidden import, even one hidden inside a function, is reported with file, line and layers."""
    source = "import numpy\n\ndef f():\n    from depth_pose_ros.eval.align import umeyama\n"
    assert check_file(Path("depth_pose_ros/data/reader.py"), source, rules) == [
        "depth_pose_ros/data/reader.py:4: data -> eval (depth_pose_ros.eval.align.umeyama)"]
    assert check_file(Path("depth_pose_ros/pipeline/x.py"), "import rclpy\n", rules) == [
        f"depth_pose_ros/pipeline/x.py:1: pipeline -> {ROS_LAYER} (rclpy)"]
    assert check_file(Path("depth_pose_ros/ros/x.py"), "from ..pipeline import result\nimport rclpy\n", rules) == []
    assert check_file(Path("depth_pose_ros/__init__.py"), "from depth_pose_ros.utils import paths\n", rules) == [
        "depth_pose_ros/__init__.py:1: package root -> utils (depth_pose_ros.utils.paths)"]


def test_every_import_obeys_the_layer_table(rules: Rules) -> None:
    found = [v for path in python_files()
             for v in check_file(path.relative_to(REPO), path.read_text(encoding="utf-8"), rules)]
    assert not found, "layer violations (docs/architecture.md, \"Layers\"):\n" + "\n".join(found)
