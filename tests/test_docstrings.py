"""Every public function and class of lazyrich is documented, Equinox style.

The public API is what each package's `__init__.py` re-exports (plus `theory.deep_linear`).
Each public function's docstring has an **Arguments:** section naming every parameter (except
`self`, `*args`, `**kwargs`) and a **Returns:** section (unless it returns `None`); a class's
`__init__` and `__call__` that take arguments are documented the same way, and a data class (a
dataclass, `eqx.Module` or `NamedTuple` whose constructor takes its fields) has a **Fields:**
section naming every field. The test lists every offender at once.
"""

import dataclasses
import importlib
import inspect
import re
from collections.abc import Callable, Iterator

PACKAGES = (
    "lazyrich.data",
    "lazyrich.evidence",
    "lazyrich.fit",
    "lazyrich.kernels",
    "lazyrich.measures",
    "lazyrich.models",
    "lazyrich.optim",
    "lazyrich.results",
    "lazyrich.theory",
    "lazyrich.theory.deep_linear",
    "lazyrich.train",
)
SKIPPED_PARAMETERS = {"self", "cls"}
_SECTION = re.compile(r"^\*\*(\w[\w ]*):\*\*", re.MULTILINE)


def _public(module_name: str) -> Iterator[tuple[str, object]]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue
        if not (inspect.isfunction(inspect.unwrap(obj)) or inspect.isclass(obj)):
            continue  # constants (DATASETS, LAYER_SETS, ...) and third-party objects (`nt`)
        if not getattr(obj, "__module__", "").startswith("lazyrich"):
            continue  # a re-exported third-party name
        yield f"{module_name}.{name}", obj


def _sections(doc: str) -> dict[str, str]:
    """`{"Arguments": text, "Returns": text, ...}`: each bold `**Name:**` header to the next."""
    matches = list(_SECTION.finditer(doc))
    out = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(doc)
        out[m.group(1)] = doc[m.end() : end]
    return out


def _parameters(fn: Callable) -> list[str]:
    names = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in SKIPPED_PARAMETERS:
            continue
        names.append(p.name)
    return names


def _missing_names(section: str, names: list[str]) -> list[str]:
    return [n for n in names if f"`{n}`" not in section]


def _own_doc(obj: object) -> str | None:
    doc = obj.__doc__
    if not doc or not doc.strip():
        return None
    if inspect.isclass(obj) and re.fullmatch(rf"{obj.__name__}\(.*\)", doc.strip(), re.DOTALL):
        return None  # the signature that dataclasses and NamedTuple write for you
    return inspect.cleandoc(doc)


def _returns_none(fn: Callable) -> bool:
    annotation = inspect.signature(fn).return_annotation
    return annotation is None or annotation == "None"


def _check_callable(label: str, fn: Callable, doc: str | None, needs_returns: bool) -> list[str]:
    fn = inspect.unwrap(fn)  # `jax.jit`, `eqx.filter_jit` and `functools.wraps` keep the doc
    if doc is None:
        return [f"{label}: no docstring"]
    problems = []
    sections = _sections(doc)
    names = _parameters(fn)
    if names:
        if "Arguments" not in sections:
            problems.append(f"{label}: no **Arguments:** section (parameters {names})")
        elif missing := _missing_names(sections["Arguments"], names):
            problems.append(f"{label}: **Arguments:** does not name {missing}")
    if needs_returns and not _returns_none(fn) and "Returns" not in sections:
        problems.append(f"{label}: no **Returns:** section")
    return problems


def _fields(cls: type) -> list[str] | None:
    """The fields a data class's constructor takes, or None for other classes."""
    if hasattr(cls, "_fields") and issubclass(cls, tuple):  # NamedTuple
        return list(cls._fields)  # pyright: ignore[reportAttributeAccessIssue]
    if dataclasses.is_dataclass(cls):  # dataclasses and eqx.Module
        return [f.name for f in dataclasses.fields(cls) if f.init]
    return None


def _has_custom_init(cls: type) -> bool:
    """A hand-written `__init__` in the class itself (not a dataclass's generated one)."""
    init = cls.__dict__.get("__init__")
    if init is None:
        return False
    code = getattr(inspect.unwrap(init), "__code__", None)
    return code is not None and code.co_filename != "<string>"


def _check_class(label: str, cls: type) -> list[str]:
    doc = _own_doc(cls)
    if doc is None:
        return [f"{label}: no docstring"]
    problems = []
    init = cls.__dict__.get("__init__")
    if _has_custom_init(cls):
        assert init is not None
        if _parameters(init):
            init_doc = _own_doc(init)
            # Equinox documents the constructor's arguments on `__init__`; the class docstring
            # is accepted too
            both = doc + "\n" + (init_doc or "")
            problems += _check_callable(f"{label}.__init__", init, both, needs_returns=False)
    elif (fields := _fields(cls)) is not None and fields:
        sections = _sections(doc)
        if "Fields" not in sections:
            problems.append(f"{label}: no **Fields:** section (fields {fields})")
        elif missing := _missing_names(sections["Fields"], fields):
            problems.append(f"{label}: **Fields:** does not name {missing}")
    call = cls.__dict__.get("__call__")
    if call is not None and inspect.isfunction(inspect.unwrap(call)) and _parameters(call):
        problems += _check_callable(f"{label}.__call__", call, _own_doc(call), needs_returns=True)
    return problems


def offenders() -> list[str]:
    problems = []
    seen: set[int] = set()
    for module_name in PACKAGES:
        for label, obj in _public(module_name):
            if id(obj) in seen:
                continue  # re-exported twice (`lazyrich.models.functional` & co)
            seen.add(id(obj))
            if inspect.isclass(obj):
                problems += _check_class(label, obj)
            else:
                assert callable(obj)
                problems += _check_callable(label, obj, _own_doc(obj), needs_returns=True)
    return problems


def test_every_public_function_and_class_is_documented():
    problems = offenders()
    assert not problems, f"{len(problems)} undocumented:\n" + "\n".join(problems)


def test_the_checker_finds_what_is_missing():
    # the checker itself: a docstring that names one of two arguments and has no Returns
    def f(a, b, *args, key=None, **kwargs):
        """Adds.

        **Arguments:**

        - `a`: a number.
        """

    problems = _check_callable("f", f, _own_doc(f), needs_returns=True)
    assert problems == [
        "f: **Arguments:** does not name ['b', 'key']",
        "f: no **Returns:** section",
    ]

    @dataclasses.dataclass
    class C:
        x: int
        y: int

    assert _check_class("C", C) == ["C: no docstring"]  # the generated `C(x: int, y: int)`


if __name__ == "__main__":
    print("\n".join(offenders()))
