"""README's "Layout" names every folder and top-level module of the package, and no other."""

from __future__ import annotations

import re

from tests.support.recordings import ROOT


def readme_layout() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    lines = block.split("statebridge/\n", 1)[1].split("\ntests/", 1)[0].splitlines()
    return [m.group(1) for line in lines if (m := re.match(r"  (\S+?/?)\s", line + " "))]


def package_entries() -> list[str]:
    package = ROOT / "statebridge"
    folders = [f"{p.name}/" for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"]
    modules = [p.name for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    return sorted(folders + modules)


def test_the_readme_layout_is_the_tree() -> None:
    assert sorted(readme_layout()) == package_entries()


def test_the_test_folders_are_in_the_readme() -> None:
    text = (ROOT / "README.md").read_text().split("## Layout", 1)[1]
    folders = sorted(
        p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"
    )
    assert folders == ["api", "containers", "support", "system", "unit"]
    for folder in folders:
        assert f"  {folder}/ " in text


def test_no_test_module_imports_another() -> None:
    """Shared fixtures live in conftest.py, shared helpers in tests/support/."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\btests(\.\w+)*\.test_\w+", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
