"""Per-example and batched modules: how lazyrich calls any Equinox model on a batch.

lazyrich's own models (`MLP`, `CNN`, `RevMLP`, `Scaled`, ...) take a batch `(n, ...)` and return
`(n, k)`. Equinox's convention is one example per call (`eqx.nn.MLP`, `eqx.nn.Conv2d`, a
researcher's `__call__(x)` on one `x`). `batch_call(model, x)` runs either kind on a batch, by
the rule `convention` documents (and `lazyrich.functional`'s docstring repeats); the wrappers
`per_example(model)` and `batched(model)` state the convention explicitly instead.
"""

from __future__ import annotations

from typing import Any, Literal

import equinox as eqx
import jax
from jaxtyping import Array, Float

from ..errors import ConfigError, require

Convention = Literal["batched", "per_example"]


class PerExample(eqx.Module):
    """A module applied to one example at a time, run on a batch with `jax.vmap`.

    Build it with `per_example(module)`. A scalar output per example becomes a trailing
    axis of 1, so an `eqx.nn.MLP(..., out_size="scalar")` gives `(n, 1)`.

    **Fields:**

    - `module`: the per-example module (`module(x[i])` is the output on example `i`).
    """

    module: Any

    def __call__(self, x: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        """**Arguments:**

        - `x`: a batch `(n, ...)`; `module` sees `x[i]`.

        **Returns:** `vmap(module)(x)`, `(n, *o)`, with `(n,)` made `(n, 1)`.
        """
        try:
            out = jax.vmap(self.module)(x)
        except (TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(
                f"{_name(self.module)} fails on one example of shape {tuple(x.shape[1:])}: "
                f"{_first_line(e)}; pass inputs of the shape the module was built for"
            ) from e
        return _as_batch_output(out, self.module)


class Batched(eqx.Module):
    """A module that takes a whole batch `(n, ...)` and returns `(n, ...)`, declared so.

    Build it with `batched(module)`; lazyrich then calls `module(x)` on the batch without
    checking the convention by shapes (see `convention`).

    **Fields:**

    - `module`: the batched module.
    """

    module: Any

    def __call__(self, x: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
        """**Arguments:**

        - `x`: a batch `(n, ...)`.

        **Returns:** `module(x)`.
        """
        return self.module(x)


def per_example(module: Any) -> PerExample:
    """Declare `module` as per-example (Equinox's convention): lazyrich vmaps it over a batch.

    **Arguments:**

    - `module`: a callable `eqx.Module` taking one example (e.g. `eqx.nn.MLP`).

    **Returns:** a `PerExample`, a batched model (`(n, ...) -> (n, *o)`, scalars as `(n, 1)`).
    """
    require(callable(module), f"per_example needs a callable module, got {type(module).__name__}")
    return module if isinstance(module, PerExample) else PerExample(module)


def batched(module: Any) -> Batched:
    """Declare `module` as batched: lazyrich calls it on the whole batch `(n, ...)`.

    **Arguments:**

    - `module`: a callable `eqx.Module` taking a batch.

    **Returns:** a `Batched` wrapper (no shape checks at call time).
    """
    require(callable(module), f"batched needs a callable module, got {type(module).__name__}")
    return module if isinstance(module, Batched) else Batched(module)


def _name(module: Any) -> str:
    return type(module).__name__


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _own(module: Any) -> bool:
    """lazyrich's own models are batched (their class is defined inside `lazyrich`)."""
    return type(module).__module__.startswith("lazyrich.")


def _as_batch_output(out: Any, module: Any) -> Any:
    require(
        hasattr(out, "shape") and hasattr(out, "dtype"),
        f"{_name(module)} returns {type(out).__name__} per example: return a single array",
    )
    return out[:, None] if out.ndim == 1 else out


def _probe(module: Any, shape: tuple[int, ...], dtype: Any) -> tuple[Any, str | None]:
    """`(output shape/dtype, None)` of `module` on an input of `shape`, or `(None, why)`."""
    try:
        out = eqx.filter_eval_shape(module, jax.ShapeDtypeStruct(shape, dtype))
    except Exception as e:  # noqa: BLE001 -- any failure means "not this convention"
        return None, _first_line(e)
    if not (hasattr(out, "shape") and hasattr(out, "dtype")):
        return None, f"it returns {type(out).__name__}, not one array"
    return out, None


def convention(module: Any, x: Array) -> Convention:
    """Whether lazyrich calls `module` on the whole batch or one example at a time.

    The rule (the same everywhere lazyrich takes a model):

    1. `per_example(m)` and `batched(m)` are what they say; lazyrich's own models (`MLP`,
       `CNN`, `RevMLP`, `Scaled`, ...) are batched.
    2. Otherwise the module is applied, under `jax.eval_shape` (nothing is computed), to the
       batch `x` and to one example `x[0]`. Batched means `module(x)` works and returns
       `(n, ...)`; per-example means `module(x[0])` works.
    3. If only one works, that is the convention. If both work (a module that broadcasts,
       such as `x @ w`), it is batched when `module` also maps a batch of `n + 1` to
       `(n + 1, ...)` (so a coincidence of `n` with a layer size cannot decide), else
       per-example.
    4. If neither works: a `ConfigError` naming both failures and the fix.

    **Arguments:**

    - `module`: the model.
    - `x`: a batch `(n, ...)` (only its shape and dtype are used).

    **Returns:** `"batched"` or `"per_example"`.
    """
    if isinstance(module, PerExample):
        return "per_example"
    if isinstance(module, Batched) or _own(module):
        return "batched"
    require(getattr(x, "ndim", 0) >= 1, "x must be a batch of inputs with a leading batch axis")
    n, shape, dtype = x.shape[0], tuple(x.shape), x.dtype

    def batch_ok(m: int) -> tuple[bool, str | None]:
        out, why = _probe(module, (m, *shape[1:]), dtype)
        if out is None:
            return False, why
        if out.ndim == 0 or out.shape[0] != m:
            return False, f"it returns shape {tuple(out.shape)} for a batch of {m}"
        return True, None

    is_batched, why_b = batch_ok(n)
    one, why_p = _probe(module, shape[1:], dtype)
    if is_batched and one is None:
        return "batched"
    if one is not None and not is_batched:
        return "per_example"
    if is_batched and one is not None:
        return "batched" if batch_ok(n + 1)[0] else "per_example"
    raise ConfigError(
        f"{_name(module)} fails on the batch {shape} ({why_b}) and on one example "
        f"{shape[1:]} ({why_p}): pass inputs of the shape the model was built for, or wrap "
        "it as lazyrich.models.per_example(model) / batched(model) to see its own error"
    )


def batch_call(module: Any, x: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
    """`module` on the batch `x`, by the rule of `convention`.

    **Arguments:**

    - `module`: any model (batched or per-example).
    - `x`: a batch `(n, ...)`.

    **Returns:** the outputs `(n, *o)`; a per-example scalar output gives `(n, 1)`.
    """
    if convention(module, x) == "batched":
        return module(x)
    return per_example(module)(x)
