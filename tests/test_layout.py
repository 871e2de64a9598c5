"""tests/ mirrors src/propsync/: every module has a test module at the same path,
``src/propsync/<pkg>/<mod>.py`` -> ``tests/<pkg>/test_<mod>.py`` (see tests/README.md)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src" / "propsync"

# Modules without a test module of their own, each with its reason. Keep it short.
ALLOWED: set[str] = set()


def modules() -> list[str]:
    """Every module under src/propsync, as a path relative to it (package ``__init__``s aside)."""
    return sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.name != "__init__.py")


def mirror_of(module: str) -> Path:
    path = Path(module)
    return TESTS / path.parent / f"test_{path.name}"


def test_every_module_has_its_test_module() -> None:
    assert len(modules()) > 50, f"the modules are not under {SRC}"
    missing = [
        f"{m} -> {mirror_of(m).relative_to(TESTS.parent)}"
        for m in modules()
        if m not in ALLOWED and not mirror_of(m).is_file()
    ]
    assert missing == [], "modules without a test module:\n" + "\n".join(missing)


def test_every_test_folder_is_a_package() -> None:
    """Same-named test modules of different folders (tests/api/test_config.py and
    tests/test_config.py) import as different modules only inside packages."""
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    assert [str(f) for f in sorted(folders) if not (f / "__init__.py").is_file()] == []


def test_the_allow_list_names_modules_that_exist_and_still_lack_tests() -> None:
    assert sorted(ALLOWED - set(modules())) == []
    assert sorted(m for m in ALLOWED if mirror_of(m).is_file()) == []
