"""The package's layers, as the README's "How it works" draws them: imports
point down `cli` -> `jobs` -> `lifecycle` -> `store`, `mail`, `hooks` (of
those three only `hooks` imports another, `mail`, for the alert e-mail); only
`store` talks to MongoDB's driver and only `cli` knows Typer and rich.

Every import counts, also one inside a function (a lazy import is still a
dependency), read from the source with `ast`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "formafriend_scheduler"
SUBPACKAGES = ("cli", "jobs", "lifecycle", "store", "mail", "hooks")
# What each subpackage may import of the others (besides itself and the
# package's top-level modules).
ALLOWED: dict[str, set[str]] = {
    "cli": {"jobs", "lifecycle", "store", "mail", "hooks"},
    "jobs": {"lifecycle", "store", "mail", "hooks"},
    "lifecycle": {"store", "hooks"},
    "store": set(),
    "mail": set(),
    "hooks": {"mail"},  # the alert e-mail (hooks/mailer.py) is composed and sent by mail/
}
THIRD_PARTY_OWNERS = {"pymongo": "store", "bson": "store", "typer": "cli", "rich": "cli"}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        yield (parts[0] if len(parts) > 1 else ""), path


def imported(path: Path) -> Iterator[str]:
    """Every module `path` imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    here = ["formafriend_scheduler", *path.relative_to(PACKAGE).parts[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module
            # `from formafriend_scheduler import memory` imports a module too
            yield from (f"{module}.{alias.name}" for alias in node.names)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "formafriend_scheduler" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in SUBPACKAGES else None


def test_the_checks_see_every_subpackage_and_their_imports() -> None:
    # A check that reads nothing passes whatever the code does.
    seen = {package for package, _ in modules()}
    assert set(SUBPACKAGES) <= seen
    runner = PACKAGE / "lifecycle" / "runner.py"
    assert "formafriend_scheduler.store" in set(imported(runner))


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_a_subpackage_imports_only_the_layers_below_it(package: str) -> None:
    wrong = sorted(
        f"{path.relative_to(PACKAGE)} imports {module}"
        for owner, path in modules()
        if owner == package
        for module in imported(path)
        if (layer := layer_of(module)) is not None
        and layer != package
        and layer not in ALLOWED[package]
    )
    assert wrong == []


@pytest.mark.parametrize("library", sorted(THIRD_PARTY_OWNERS))
def test_a_library_at_an_edge_is_imported_only_there(library: str) -> None:
    owner = THIRD_PARTY_OWNERS[library]
    wrong = sorted(
        str(path.relative_to(PACKAGE))
        for package, path in modules()
        if package != owner and any(module.split(".")[0] == library for module in imported(path))
    )
    assert wrong == []
