"""Exact GN for RevMLP and NTK-space GN, against dense Jacobians and pseudo-inverses (float64)."""

import functools

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest
from jax.flatten_util import ravel_pytree

from lazyrich.errors import ConfigError
from lazyrich.models._frozen import functional, partition
from lazyrich.models._mlp import MLP
from lazyrich.models._revmlp import RevMLP
from lazyrich.optim._gauss_newton import (
    _half_layer_solve,
    exact_gauss_newton,
    exact_gn_direction,
    ntk_gauss_newton,
    output_error,
    pinv_solve,
)
from lazyrich.optim._pinv import AutoSolver

D, K, N = 8, 3, 16


def _setup(num_blocks=2, hidden=32, linear_first=False, n=N, dtype=jnp.float64):
    model = RevMLP(
        D,
        num_blocks=num_blocks,
        hidden=hidden,
        out_dim=K,
        sigma=0.3,  # large enough that the coupling term m and the transport matter
        linear_first=linear_first,
        dtype=dtype,
        key=jax.random.key(0),
    )
    x = jax.random.normal(jax.random.key(1), (n, D), dtype)
    y = jax.random.normal(jax.random.key(2), (n, K), dtype)
    return model, x, y


@eqx.filter_jit
def _dense_jacobian(model, x, features=False):
    """J of the flattened outputs (or of x_L) w.r.t. the flattened params, by jacrev."""
    params, rest = partition(model)
    flat, unravel = ravel_pytree(params)
    f = lambda p: eqx.combine(unravel(p), rest)
    out = (lambda p: f(p).features(x).reshape(-1)) if features else (lambda p: f(p)(x).reshape(-1))
    return jax.jacrev(out)(flat)


def _flat(tree):
    return ravel_pytree(tree)[0]


# ----------------------------------------------------------------- the constant in J Δθ = c·ε


@pytest.mark.parametrize("num_blocks,loss", [(2, "mse"), (3, "ce")])
def test_raw_step_moves_outputs_by_num_blocks_times_eps(x64, num_blocks, loss):
    # All ReLU blocks with h + 1 = 33 >= n = 16: every half-layer has full row rank, so each
    # block alone reproduces ε and the raw sum gives exactly L·ε.
    model, x, y = _setup(num_blocks=num_blocks)
    if loss == "ce":
        y = jax.random.randint(jax.random.key(3), (N,), 0, K)  # integer labels
    eps = output_error(model(x), y, loss).reshape(-1)
    jac = _dense_jacobian(model, x)
    kw = dict(loss=loss, rtol=1e-6, atol=0.0)
    raw = _flat(exact_gn_direction(model, x, y, normalize="none", **kw))
    chex.assert_trees_all_close(jac @ raw, num_blocks * eps, rtol=1e-8, atol=1e-10)
    for normalize in ("blocks", "fit"):
        step = _flat(exact_gn_direction(model, x, y, normalize=normalize, **kw))
        chex.assert_trees_all_close(jac @ step, eps, rtol=1e-8, atol=1e-10)
    # The wrong constant would be caught: ε and L·ε differ by far more than the tolerance.
    assert float(jnp.linalg.norm(eps)) > 1e-2


def test_step_vs_minimum_norm_solution(x64):
    # Both Δθ (normalized) and J⁺ε solve J Δθ = ε, so Δθ − J⁺ε lies in null(J) and J⁺ε is the
    # orthogonal projection of Δθ onto the row space of J: cos(Δθ, J⁺ε) = ‖J⁺ε‖/‖Δθ‖ < 1.
    model, x, y = _setup(num_blocks=2)
    eps = output_error(model(x), y, "mse").reshape(-1)
    jac = _dense_jacobian(model, x)
    step = _flat(exact_gn_direction(model, x, y, rtol=1e-6, atol=0.0))
    min_norm = jnp.linalg.pinv(jac) @ eps
    chex.assert_trees_all_close(jac @ (step - min_norm), jnp.zeros_like(eps), atol=1e-9)
    cos = jnp.vdot(step, min_norm) / (jnp.linalg.norm(step) * jnp.linalg.norm(min_norm))
    ratio = jnp.linalg.norm(step) / jnp.linalg.norm(min_norm)
    print(f"exact GN vs J+eps: cosine {float(cos):.4f}, norm ratio {float(ratio):.3f}")
    chex.assert_trees_all_close(cos * ratio, 1.0, rtol=1e-8)
    assert float(ratio) > 1.0  # not the minimum-norm step (it is blockwise min-norm)
    projected = jnp.linalg.pinv(jac) @ (jac @ step)
    chex.assert_trees_all_close(projected, min_norm, rtol=1e-7, atol=1e-9)


# ----------------------------------------------------- rank-deficient half-layers: least squares


def _block_targets_and_jacobians(model, x, eps):
    """Per block l: its output y_l, the transported target t_l = (∂x_L/∂y_l)⁻¹ ε Uᵀ, and T_l."""
    outs = model.blocks_forward(x)
    t = eps @ model.readout.value.T
    res = []
    for i in range(len(model.blocks)):

        def later(v, i=i):
            for block in model.blocks[i + 1 :]:
                v = block(v[None])[0]
            return v

        tl = jax.vmap(jax.jacfwd(later))(outs[i])  # (n, d, d) per-sample Jacobians
        res.append((outs[i], jnp.linalg.solve(tl, t[..., None])[..., 0], tl))
    return res


def _only(tree, i, half):
    """A copy of the direction with every leaf zeroed except block i's `half` (f or g)."""
    zero = jax.tree.map(jnp.zeros_like, tree)
    get = lambda m: (getattr(m.blocks[i], f"w_{half}"), getattr(m.blocks[i], f"b_{half}"))
    return eqx.tree_at(get, zero, get(tree))


@pytest.mark.parametrize(
    "hidden,linear_first",
    [(32, True), (4, False)],
    ids=["linear-first-block-rank-d/2+1", "h<batch"],
)
def test_each_half_layer_is_a_min_norm_least_squares_solve(x64, hidden, linear_first):
    # When a half-layer's features A (n × (h+1)) lack full row rank (h + 1 < n, or the linear
    # first block with rank <= d/2 + 1 = 5 < 16), the step is still well defined and each
    # half-layer solves min ‖A ΔW − target‖ with minimum norm, for the transported target:
    # f-half: Aᵀ(Δy1 − t1) = 0; g-half: Aᵀ(Δy2 − (t2 − m)) = 0, m the move of y2 from Δy1.
    # Checked through the dense Jacobian of x_L, mapped back to block coordinates.
    model, x, y = _setup(num_blocks=2, hidden=hidden, linear_first=linear_first)
    eps = output_error(model(x), y, "mse")
    direction = exact_gn_direction(model, x, y, rtol=1e-6, atol=0.0, normalize="none")
    jx = _dense_jacobian(model, x, features=True)
    inputs = [x.reshape(N, -1)] + model.blocks_forward(x)[:-1]
    half = D // 2
    not_exact = 0
    for i, (y_out, t_l, tl) in enumerate(_block_targets_and_jacobians(model, x, eps)):
        block = model.blocks[i]
        to_block = lambda v, tl=tl: jnp.linalg.solve(tl, v.reshape(N, D)[..., None])[..., 0]
        c_f = to_block(jx @ _flat(_only(direction, i, "f")))
        c_g = to_block(jx @ _flat(_only(direction, i, "g")))
        ones = jnp.ones((N, 1))
        a_f = jnp.concatenate([block.features_f(inputs[i][:, half:]), ones], axis=1)
        a_g = jnp.concatenate([block.features_g(y_out[:, :half]), ones], axis=1)
        dy1, m = c_f[:, :half], c_f[:, half:]
        chex.assert_trees_all_close(
            a_f.T @ (dy1 - t_l[:, :half]), jnp.zeros((hidden + 1, half)), atol=1e-9
        )
        chex.assert_trees_all_close(c_g[:, :half], jnp.zeros((N, half)), atol=1e-12)
        r_g = c_g[:, half:] - (t_l[:, half:] - m)
        chex.assert_trees_all_close(a_g.T @ r_g, jnp.zeros((hidden + 1, half)), atol=1e-9)
        # Minimum norm: each ΔW lies in the row space of its A.
        b = direction.blocks[i]
        for a, w, bias in ((a_f, b.w_f, b.b_f), (a_g, b.w_g, b.b_g)):
            dw = jnp.concatenate([w.T, bias[None]], axis=0)
            chex.assert_trees_all_close(jnp.linalg.pinv(a) @ (a @ dw), dw, atol=1e-9)
        not_exact += float(jnp.linalg.norm(dy1 - t_l[:, :half])) > 1e-3
        assert bool(jnp.all(jnp.isfinite(_flat(direction))))
    assert not_exact >= 1  # the test really is in the rank-deficient regime


@pytest.mark.parametrize("n", [64, 5, 3])
@pytest.mark.parametrize("damping", [None, 1e-3])
def test_linear_half_layer_factored_solve_equals_the_dense_pseudo_inverse(x64, n, damping):
    # A = [V Cᵀ, 1] has rank <= d/2 + 1 = 5: for n > 5 the step solves through the thin QR of
    # [V, 1] (a 5 × 5 Gram matrix instead of n × n); it must equal A⁺ t from the SVD of A
    # (truncated at rtol 1e-2, the paper's) or the Tikhonov inverse, and A ΔW must equal A @ ΔW.
    half, hidden = 4, 32
    k = jax.random.split(jax.random.key(5), 3)
    v = jax.random.normal(k[0], (n, half))
    c = jax.random.normal(k[1], (hidden, half)) / hidden**0.5
    t = jax.random.normal(k[2], (n, half))
    pinv = lambda a, b: pinv_solve(a, b, rtol=1e-2, atol=1e-5, damping=damping)  # noqa: E731
    dw, moved = _half_layer_solve(v, c, False, t, pinv, lambda w: w @ c.T)
    a = jnp.concatenate([v @ c.T, jnp.ones((n, 1))], axis=1)
    if damping is None:
        u, s, vt = jnp.linalg.svd(a, full_matrices=False)
        keep = s > max(1e-2 * float(s[0]), 1e-5)
        ref = vt[keep].T @ ((u[:, keep].T @ t) / s[keep, None])
    else:
        ref = jnp.linalg.solve(a.T @ a + damping * jnp.eye(hidden + 1), a.T @ t)
    chex.assert_trees_all_close(dw, ref, rtol=1e-9, atol=1e-11)
    chex.assert_trees_all_close(moved, a @ dw, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("solver", ["auto", "eigh"])
def test_pinv_solve_matches_truncated_svd_and_damping(x64, solver):
    key1, key2, key3 = jax.random.split(jax.random.key(7), 3)
    for shape in [(12, 30), (30, 12)]:
        u, _ = jnp.linalg.qr(jax.random.normal(key1, (shape[0], min(shape))))
        v, _ = jnp.linalg.qr(jax.random.normal(key2, (shape[1], min(shape))))
        s = jnp.logspace(0, -4, min(shape))  # spans the 1e-2 cut-off
        a = (u * s) @ v.T
        t = jax.random.normal(key3, (shape[0], 5))
        want = jnp.linalg.pinv(a, rtol=1e-2) @ t
        got = pinv_solve(a, t, rtol=1e-2, atol=1e-5, solver=solver)
        chex.assert_trees_all_close(got, want, rtol=1e-8, atol=1e-10)
        lam = 1e-3
        want = jnp.linalg.solve(a.T @ a + lam * jnp.eye(shape[1]), a.T @ t)
        got = pinv_solve(a, t, damping=lam, solver=solver)
        chex.assert_trees_all_close(got, want, rtol=1e-7, atol=1e-9)
        # atol bites when all singular values are tiny.
        got = pinv_solve(1e-7 * a, t, atol=1e-5, solver=solver)
        chex.assert_trees_all_close(got, jnp.zeros_like(want))


def _with_spectrum(s, n, p, key):
    """An (n, p) matrix with singular values s (random singular vectors)."""
    k1, k2 = jax.random.split(key)
    u, _ = jnp.linalg.qr(jax.random.normal(k1, (n, len(s))))
    v, _ = jnp.linalg.qr(jax.random.normal(k2, (p, len(s))))
    return (u * s) @ v.T


@pytest.mark.parametrize("n, p", [(40, 90), (90, 40)])
def test_pinv_solvers_agree_where_both_apply_and_auto_decides_by_the_cutoff(x64, n, p):
    """Cholesky = eigh = truncated SVD when nothing is truncated; `auto` takes Cholesky only
    then (its result equals the truncated SVD on both sides of the cut-off)."""
    m = min(n, p)
    t = jax.random.normal(jax.random.key(3), (n, 4))
    auto = AutoSolver()
    # cond(A) 10, 80: below (1 − slack)/rtol = 90 (Cholesky applies); 200, 1e4: truncated
    for k, cond in enumerate([10.0, 80.0, 200.0, 1e4]):
        a = _with_spectrum(jnp.logspace(0, -jnp.log10(cond), m), n, p, jax.random.key(10 + k))
        want = jnp.linalg.pinv(a, rtol=1e-2) @ t
        gram = a @ a.T if n <= p else a.T @ a
        truncated, lam_max = auto.surely_truncated(gram, rtol=1e-2, atol=1e-5)
        chol = jnp.linalg.cholesky(gram)
        well = bool(auto.well_conditioned(gram, chol, lam_max, rtol=1e-2, atol=1e-5))
        assert well == (cond < 100), cond
        assert not (well and bool(truncated)), cond
        for solver in ("auto", "eigh") + (("cholesky",) if cond < 100 else ()):
            got = jax.jit(functools.partial(pinv_solve, solver=solver))(a, t)
            chex.assert_trees_all_close(got, want, rtol=1e-8, atol=1e-12)
        if cond > 100:  # the untruncated solve really differs there
            chol = pinv_solve(a, t, solver="cholesky")
            assert float(jnp.linalg.norm(chol - want)) > 1e-3 * float(jnp.linalg.norm(want))
    # rank-deficient (Cholesky fails: NaN factor) and float32 round-off
    a = _with_spectrum(
        jnp.concatenate([jnp.ones(m // 2), jnp.zeros(m - m // 2)]), n, p, jax.random.key(20)
    )
    chex.assert_trees_all_close(
        pinv_solve(a, t), jnp.linalg.pinv(a, rtol=1e-2) @ t, rtol=1e-8, atol=1e-10
    )
    a32 = _with_spectrum(jnp.logspace(0, -1, m), n, p, jax.random.key(21)).astype(jnp.float32)
    t32 = t.astype(jnp.float32)
    chex.assert_trees_all_close(
        pinv_solve(a32, t32), pinv_solve(a32, t32, solver="eigh"), rtol=1e-3, atol=1e-4
    )


def test_default_truncation_still_reduces_the_linearized_error(x64):
    # The paper's settings (rtol 1e-2, atol 1e-5) drop small singular values, so J Δθ is no
    # longer exactly ε; it must still be a descent step for the linearized error.
    model, x, y = _setup(num_blocks=2, linear_first=True)
    eps = output_error(model(x), y, "mse").reshape(-1)
    step = _flat(exact_gn_direction(model, x, y))
    jd = _dense_jacobian(model, x) @ step
    rel = float(jnp.linalg.norm(jd - eps) / jnp.linalg.norm(eps))
    print(f"default truncation, linear first block: ‖JΔθ − ε‖/‖ε‖ = {rel:.3f}")
    assert rel < 1.0


# ------------------------------------------------------------------------- optax wrapper


def test_optax_transformation_update_is_minus_lr_times_direction(x64):
    model, x, y = _setup(num_blocks=2)
    params, _ = functional(model)
    opt = exact_gauss_newton(model, 0.5, loss="mse")
    state = opt.init(params)
    upd, state = jax.jit(lambda p, s, x, y: opt.update(None, s, p, x=x, y=y))(params, state, x, y)
    direction = exact_gn_direction(model, x, y)
    chex.assert_trees_all_close(upd, jax.tree.map(lambda d: -0.5 * d, direction), rtol=1e-9)
    assert int(state.count) == 1
    # Schedules get the step count.
    sched = exact_gauss_newton(model, lambda c: 0.1 * (c + 1.0))
    s = sched.init(params)
    u1, s = sched.update(None, s, params, x=x, y=y)
    u2, s = sched.update(None, s, params, x=x, y=y)
    chex.assert_trees_all_close(jax.tree.map(lambda a: 2 * a, u1), u2, rtol=1e-9)


def test_optax_transformation_trains_in_float32():
    # Paper init (σ = 1e-3), full batch. In the linearized model each step with lr η scales
    # z − y by (1 − 2η) (ε = 2(z − y), J Δθ = ε), so the loss by (1 − 2η)² = 0.64 at η = 0.1.
    model = RevMLP(
        D, num_blocks=2, hidden=32, out_dim=K, sigma=1e-3, linear_first=False, key=jax.random.key(0)
    )
    x = jax.random.normal(jax.random.key(1), (N, D))
    y = 0.3 * jax.random.normal(jax.random.key(2), (N, K))
    params, apply = functional(model)
    opt = exact_gauss_newton(model, 0.1, loss="mse")
    update = jax.jit(lambda p, s, x, y: opt.update(None, s, p, x=x, y=y))
    loss = lambda p: float(jnp.sum((apply(p, x) - y) ** 2))
    state = opt.init(params)
    losses = [loss(params)]
    for _ in range(5):
        upd, state = update(params, state, x, y)
        params = optax.apply_updates(params, upd)
        losses.append(loss(params))
    ratios = [b / a for a, b in zip(losses, losses[1:], strict=False)]
    assert all(r < 0.8 for r in ratios), ratios
    assert abs(ratios[0] - 0.64) < 0.08, ratios


# ------------------------------------------------------------------------- NTK-space GN


def test_ntk_gauss_newton_is_min_norm_and_cg_matches_dense(x64):
    model, x, y = _setup(num_blocks=2, linear_first=True)
    params, apply = functional(model)
    eps = output_error(model(x), y, "mse")
    jac = _dense_jacobian(model, x)
    min_norm = jnp.linalg.pinv(jac) @ eps.reshape(-1)
    dense = _flat(ntk_gauss_newton(apply, params, x, eps, damping=1e-12))
    chex.assert_trees_all_close(dense, min_norm, rtol=1e-7, atol=1e-9)
    cg = _flat(ntk_gauss_newton(apply, params, x, eps, damping=1e-12, method="cg", tol=1e-12))
    chex.assert_trees_all_close(cg, dense, rtol=1e-7, atol=1e-9)
    # Damped: the closed form Jᵀ(JJᵀ + λI)⁻¹ε.
    lam = 1e-1
    want = jac.T @ jnp.linalg.solve(jac @ jac.T + lam * jnp.eye(N * K), eps.reshape(-1))
    got = _flat(ntk_gauss_newton(apply, params, x, eps, damping=lam))
    chex.assert_trees_all_close(got, want, rtol=1e-9, atol=1e-12)
    got = _flat(ntk_gauss_newton(apply, params, x, eps, damping=lam, method="cg", tol=1e-12))
    chex.assert_trees_all_close(got, want, rtol=1e-7, atol=1e-10)
    # Versus the exact reversible step (all-ReLU, full rank so both solve J Δθ = ε):
    model, x, y = _setup(num_blocks=2)
    params, apply = functional(model)
    eps = output_error(model(x), y, "mse")
    exact = _flat(exact_gn_direction(model, x, y, rtol=1e-6, atol=0.0))
    ntk = _flat(ntk_gauss_newton(apply, params, x, eps, damping=1e-12))
    cos = float(jnp.vdot(exact, ntk) / (jnp.linalg.norm(exact) * jnp.linalg.norm(ntk)))
    print(f"exact GN vs NTK GN on RevMLP: cosine {cos:.4f}")
    chex.assert_trees_all_close(cos, float(jnp.linalg.norm(ntk) / jnp.linalg.norm(exact)))


def test_ntk_gauss_newton_any_model(x64):
    # rbg: XLA's RngBitGenerator compiles ~2× faster than threefry on CPU
    key = jax.random.key(0, impl="rbg")
    model = MLP(5, 16, 2, 2, parameterization="standard", dtype=jnp.float64, key=key)
    params, apply = functional(model)
    x = jax.random.normal(jax.random.key(1), (6, 5))
    eps = jax.random.normal(jax.random.key(2), (6, 2))
    flat, unravel = ravel_pytree(params)
    jac = jax.jit(jax.jacrev(lambda p: apply(unravel(p), x).reshape(-1)))(flat)
    want = jnp.linalg.pinv(jac) @ eps.reshape(-1)
    got = _flat(ntk_gauss_newton(apply, params, x, eps, damping=1e-12))
    chex.assert_trees_all_close(got, want, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------------- errors


def test_errors():
    mlp = MLP(8, 16, 1, 3, key=jax.random.key(0))
    x = jnp.ones((4, 8))
    y = jnp.zeros((4, 3))
    msg = "exact_gauss_newton needs a RevMLP; use ntk_gauss_newton for other models"
    with pytest.raises(ConfigError, match=msg):
        exact_gn_direction(mlp, x, y)
    with pytest.raises(ConfigError, match=msg):
        exact_gauss_newton(mlp, 0.1)
    model, _, _ = _setup(dtype=jnp.float32)
    with pytest.raises(ConfigError, match="unknown loss"):
        exact_gn_direction(model, x, y, loss="l1")
    with pytest.raises(ConfigError, match="unknown normalize"):
        exact_gn_direction(model, x, y, normalize="sum")
    with pytest.raises(ConfigError, match="expects 8"):
        exact_gn_direction(model, jnp.ones((4, 6)), y)
    params, apply = functional(model)
    with pytest.raises(ConfigError, match="unknown solver"):
        pinv_solve(x, y, solver="lu")  # pyright: ignore[reportArgumentType]
    with pytest.raises(ConfigError, match="unknown method"):
        ntk_gauss_newton(apply, params, x, y, method="lu")
    with pytest.raises(ConfigError, match="eps has shape"):
        ntk_gauss_newton(apply, params, x, jnp.zeros((4, 2)))


def test_pinv_solve_runs_lapack_on_one_openblas_thread():
    """Tracing `pinv_solve` on the CPU sets the OpenBLAS under JAX's LAPACK calls (SciPy's) to
    one thread: with a thread per core its eigh is 5-100x slower inside XLA (module docstring)."""
    import ctypes
    import sys

    from lazyrich.optim._lapack_threads import _loaded_openblas

    assert sys.platform.startswith("linux") and jax.default_backend() == "cpu"
    a = jax.random.normal(jax.random.key(0), (4, 6))
    jax.jit(pinv_solve)(a, a[:, :2])
    paths = _loaded_openblas()  # read the thread counts without setting them here
    assert any("scipy" in p for p in paths), paths
    for p in paths:
        lib = ctypes.CDLL(p)
        get = getattr(lib, "scipy_openblas_get_num_threads", None) or lib.openblas_get_num_threads
        assert get() == 1, p


@pytest.mark.parametrize("solver", ["eigh", "auto"])
def test_vmapped_step_calls_lapack_one_matrix_at_a_time(x64, solver):
    # A batched LAPACK call (what vmap makes of eigh/qr/cholesky) is split by jaxlib over XLA's
    # thread pool and waited for; two at once deadlocked a 3-seed sweep on 2 cores. The
    # solvers batch as a loop on CPU instead: every LAPACK call in the program is unbatched.
    models = [
        RevMLP(16, num_blocks=2, hidden=8, out_dim=3, key=jax.random.key(s)) for s in range(3)
    ]
    parts = [partition(m) for m in models]
    params = jax.tree.map(lambda *a: jnp.stack(a), *[p for p, _ in parts])
    rest = jax.tree.map(
        lambda *a: jnp.stack(a) if eqx.is_array(a[0]) else a[0], *[r for _, r in parts]
    )
    x = jax.random.normal(jax.random.key(1), (32, 16), jnp.float64)
    y = jax.random.randint(jax.random.key(2), (32,), 0, 3)

    def one(p, r):
        gn = exact_gauss_newton(eqx.combine(p, r), 0.5, loss="ce", solver=solver)
        return gn.update(None, gn.init(p), p, x=x, y=y)[0]  # pyright: ignore[reportArgumentType]

    text = jax.jit(jax.vmap(one)).lower(params, rest).as_text()
    calls = [line for line in text.splitlines() if "custom_call @lapack" in line]
    assert any("syevd" in c for c in calls) and any("geqrf" in c for c in calls)
    assert all('num_batch_dims = "0"' in c for c in calls), calls
    # and the looped step equals the per-seed steps
    stepped = jax.jit(jax.vmap(one))(params, rest)
    for s in range(3):
        single = one(
            *(
                jax.tree.map(lambda a, s=s: a[s] if eqx.is_array(a) else a, t)
                for t in (params, rest)
            )
        )
        chex.assert_trees_all_close(
            jax.tree.map(lambda a, s=s: a[s], stepped), single, rtol=1e-9, atol=1e-12
        )
