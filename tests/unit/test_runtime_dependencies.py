"""Everything keyfob's own code imports is installed by ``pip install keyfob`` alone.

The README's first command installs the package without its development extras; an import of
a package only the test tools bring (as gmqtt once was) breaks ``keyfob serve`` for every new
user while the whole test suite, which installs the extras, stays green.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        _normal(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in project["dependencies"]
    }


def _imported() -> dict[str, str]:
    """Top-level third-party modules imported anywhere in ``src/keyfob``, with one place each."""
    found: dict[str, str] = {}
    for path in (ROOT / "src" / "keyfob").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "keyfob" and top not in sys.stdlib_module_names:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_import_of_the_package_is_a_declared_dependency() -> None:
    declared = _declared()
    owners = packages_distributions()
    undeclared = []
    for module, where in sorted(_imported().items()):
        distributions = {_normal(d) for d in owners.get(module, [module])}
        # A module may come with a declared package (e.g. uvloop with uvicorn[standard]).
        if not distributions & declared and not _brought_by_declared(distributions, declared):
            undeclared.append(f"{module} (imported in {where}; from {sorted(distributions)})")
    assert not undeclared, "add to [project.dependencies]: " + "; ".join(undeclared)


def _brought_by_declared(distributions: set[str], declared: set[str]) -> bool:
    from importlib.metadata import PackageNotFoundError, requires

    for parent in declared:
        try:
            wanted = requires(parent) or []
        except PackageNotFoundError:
            continue
        if {_normal(re.split(r"[\s\[<>=!~;]", w, maxsplit=1)[0]) for w in wanted} & distributions:
            return True
    return False
