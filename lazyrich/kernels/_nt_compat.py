"""The one place lazyrich imports neural-tangents (0.6.5), patched for current JAX.

neural-tangents 0.6.5 predates JAX 0.5+. It needs, and this module provides:

- `jax.core.{Jaxpr, JaxprEqn, Literal, Var, Primitive}`: moved to `jax.extend.core`;
- `jax.util.{safe_map, safe_zip}`: the `jax.util` module was removed (`jax._src.util` keeps them);
- `jax.interpreters.ad.zeros_like_p`: removed; neural-tangents only names it in a rule table,
  so an inert primitive of that name stands in;
- `neural_tangents.experimental`: imports TensorFlow (which lazyrich does not install) and is
  imported eagerly by the package `__init__`; an empty placeholder module is registered instead.

Nothing is patched that already exists. If a future JAX removes one of the sources, importing
this module fails with an ImportError that names the missing piece.
"""

from __future__ import annotations

import importlib
import sys
import types

import jax
import jax.core
import jax.interpreters.ad

_CORE_NAMES = ("Jaxpr", "JaxprEqn", "Literal", "Var", "Primitive")
_UTIL_NAMES = ("safe_map", "safe_zip")


def _fail(what: str) -> ImportError:
    return ImportError(
        f"lazyrich cannot adapt neural-tangents 0.6.5 to JAX {jax.__version__}: {what}. "
        "Pin an older JAX or update lazyrich/kernels/_nt_compat.py."
    )


def _patch() -> None:
    try:
        extend_core = importlib.import_module("jax.extend.core")
    except ImportError as e:  # pragma: no cover - depends on the JAX version
        raise _fail("jax.extend.core is missing") from e
    for name in _CORE_NAMES:
        if not hasattr(jax.core, name):
            if not hasattr(extend_core, name):
                raise _fail(f"jax.extend.core.{name} is missing")
            setattr(jax.core, name, getattr(extend_core, name))

    if "jax.util" not in sys.modules:
        try:
            importlib.import_module("jax.util")
        except ImportError:
            src_util = importlib.import_module("jax._src.util")
            util = types.ModuleType("jax.util")
            for name in _UTIL_NAMES:
                if not hasattr(src_util, name):
                    raise _fail(f"jax._src.util.{name} is missing") from None
                setattr(util, name, getattr(src_util, name))
            sys.modules["jax.util"] = util
            jax.util = util  # type: ignore[attr-defined]
    util = sys.modules["jax.util"]
    for name in _UTIL_NAMES:
        if not hasattr(util, name):
            setattr(util, name, getattr(importlib.import_module("jax._src.util"), name))

    if not hasattr(jax.interpreters.ad, "zeros_like_p"):
        jax.interpreters.ad.zeros_like_p = extend_core.Primitive("zeros_like")  # type: ignore[attr-defined]

    if "neural_tangents.experimental" not in sys.modules:
        placeholder = types.ModuleType("neural_tangents.experimental")
        placeholder.__doc__ = "Not available in lazyrich: it needs TensorFlow."
        sys.modules["neural_tangents.experimental"] = placeholder


_patch()

try:
    import neural_tangents as nt  # noqa: E402
    from neural_tangents import stax  # noqa: E402
except (ImportError, AttributeError) as e:  # pragma: no cover - depends on the JAX version
    raise _fail(f"importing neural_tangents failed ({type(e).__name__}: {e})") from e

__all__ = ["nt", "stax"]
