"""The public faces: `import lazyrich` exposes every package, and the ruff ban on private
modules (TID251, for analysis/ and benchmarks/) names every private module of the library."""

import pathlib
import tomllib

import lazyrich

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("data", "fit", "kernels", "measures", "models", "optim", "results", "theory", "train")


def test_import_lazyrich_exposes_every_package():
    for name in PACKAGES:
        assert hasattr(lazyrich, name), name
    assert callable(lazyrich.functional)
    assert callable(lazyrich.theory.deep_linear.simulate)


def test_every_private_module_is_banned_outside_the_library():
    private = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "lazyrich").rglob("_*.py")
        if p.name != "__init__.py"
    }
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    banned = set(config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-api"])
    assert private - banned == set(), "add these to [tool.ruff.lint.flake8-tidy-imports]"
    assert banned - private == set(), "these banned modules no longer exist"


def test_packages_have_no_public_submodules_besides_their_faces():
    # every module of a package is private except the face (`__init__`) and named namespaces
    allowed = {"lazyrich/errors.py", "lazyrich/theory/deep_linear.py"}
    for p in (ROOT / "lazyrich").rglob("*.py"):
        rel = p.relative_to(ROOT).as_posix()
        assert p.name.startswith("_") or rel in allowed, f"{rel} should be private (_name.py)"
