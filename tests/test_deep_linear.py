"""The deep-linear γ toy theory against gradient descent on the toy model itself."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.theory.deep_linear import (
    balanced_hessian_eigenvalues,
    eta_star_prediction,
    gradient_flow,
    plateau_length,
    rescaled_time,
    sharpness_at_init,
    sharpness_at_solution,
    simulate,
    staircase,
    theory_slopes,
)


@jax.jit
def _dense_hessian(a, gamma, y, c):
    loss = lambda v: 0.5 * (y - (jnp.prod(v) - c) / gamma) ** 2
    return jax.hessian(loss)(a)


def _dense_top(L, a, gamma, y, c):
    return float(np.linalg.eigvalsh(np.asarray(_dense_hessian(a, gamma, y, c)))[-1])


@pytest.mark.parametrize("L", [1, 2, 3, 4])
def test_sharpness_at_init_and_solution_match_dense_hessian(x64, L):
    y = 1.3
    for gamma in (1e-3, 1.0, 1e3):
        for centre, a0 in ((True, 1.0), (False, 0.7)):
            c = a0**L if centre else 0.0
            exact = _dense_top(L, jnp.full(L, a0), gamma, y, c)
            got = float(sharpness_at_init(L, a0, gamma, y, centre=centre))
            assert abs(got - exact) < 1e-10 * abs(exact), (L, gamma, centre, got, exact)
    # the Gauss–Newton approximation L a0^(2L-2)/γ² holds in the lazy regime only
    gn = float(sharpness_at_init(L, 1.2, 1e-4))
    assert abs(gn - _dense_top(L, jnp.full(L, 1.2), 1e-4, y, 1.2**L)) < 1e-3 * gn
    # at the solution reached by GD (uncentred: L y^(2-2/L) γ^(-2/L) exactly)
    for gamma in (0.1, 10.0):
        lam = float(sharpness_at_solution(L, y, gamma))
        assert lam == pytest.approx(L * y ** (2 - 2 / L) * gamma ** (-2 / L), rel=1e-12)
        a0 = (0.3 * gamma * y) ** (1 / L)  # f0 = 0.3 y
        run = simulate(L, gamma, 0.5 / lam, 3000, a0, y, centre=False)
        assert abs(float(run.loss[-1])) < 1e-20
        measured = _dense_top(L, run.a, gamma, y, 0.0)
        assert abs(measured - lam) < 1e-8 * lam, (measured, lam)
        lam_c = float(sharpness_at_solution(L, y, gamma, a0=1.0, centre=True))
        run = simulate(L, gamma, 0.5 / lam_c, 3000, 1.0, y, centre=True)
        assert abs(_dense_top(L, run.a, gamma, y, 1.0) - lam_c) < 1e-8 * lam_c


def test_hessian_eigenvalues_formula_off_solution(x64):
    for L in (2, 3, 5):
        a, gamma, y, c = 0.9, 2.0, 1.5, 0.4
        lp, lq = balanced_hessian_eigenvalues(L, a, gamma, y, offset=c)
        evals = np.linalg.eigvalsh(np.asarray(_dense_hessian(jnp.full(L, a), gamma, y, c)))
        np.testing.assert_allclose(sorted([float(lp)] + [float(lq)] * (L - 1)), evals, rtol=1e-10)


@pytest.mark.parametrize("L", [2, 3])
def test_eta_max_slopes_2_and_2_over_L(x64, L):
    """Largest stable GD learning rate, found on a fine η grid with the divergence rule."""
    gammas = jnp.array([1e-3, 3e-3, 1e-2, 1e2, 1e3, 1e4])
    pred = eta_star_prediction(L, gammas)
    grid = jnp.asarray(10 ** np.linspace(-0.5, 0.3, 161))  # 1.2% steps around the prediction
    etas = pred[:, None] * grid[None, :]
    run = simulate(L, gammas[:, None], etas, 3000)
    stable = jnp.isfinite(run.loss[..., -1]) & (run.loss[..., -1] < 1e-6 * run.loss[..., 0])
    assert bool(stable[:, 0].all()) and not bool(stable[:, -1].any())
    first_bad = jnp.argmin(stable, axis=1)  # a diverged run marks every larger η diverged
    eta_max = np.asarray(etas[jnp.arange(6), first_bad - 1])
    # the prediction 2/max(λ_init, λ_solution) is right to within one grid step
    np.testing.assert_allclose(eta_max / np.asarray(pred), 1.0, atol=0.025)
    small, large = theory_slopes(L)
    lg, le = np.log10(np.asarray(gammas)), np.log10(eta_max)
    assert abs(np.polyfit(lg[:3], le[:3], 1)[0] - small) < 0.05
    assert abs(np.polyfit(lg[3:], le[3:], 1)[0] - large) < 0.05
    # the best rate after a fixed budget also scales with slope 2 in the lazy limit (η* = 1/λ)
    loss_at = run.loss[:3, 5]
    best = np.asarray(etas[jnp.arange(3), jnp.nanargmin(loss_at, axis=1)])
    assert abs(np.polyfit(lg[:3], np.log10(best), 1)[0] - 2.0) < 0.05


@pytest.mark.parametrize("L", [2, 3, 4])
def test_gradient_flow_and_plateau_length_match_gd(x64, L):
    y = 1.0
    for gamma in (30.0, 300.0):
        eta = 0.02 * gamma ** (2 / L)  # dτ = 0.02
        t_plateau = plateau_length(L, y, gamma, eta, 1.0)
        steps = 1500  # one compile per depth
        assert 1.5 * t_plateau < steps
        run = simulate(L, gamma, eta, steps, 1.0, y)
        escape = int(jnp.argmax(run.f >= 0.5 * y))
        assert abs(escape - t_plateau) < 0.1 * t_plateau, (L, gamma, escape, t_plateau)
        assert abs(escape - t_plateau) < 0.03 * t_plateau  # O(dτ) discretisation only
        flow = gradient_flow(L, y, gamma, eta, jnp.arange(steps + 1.0), 0.0, a0=1.0)
        assert float(jnp.max(jnp.abs(flow - run.f))) < 0.05 * y
    # the plateau (in τ) lengthens with γ as ln γ (L = 2) or γ^(1 − 2/L) (L ≥ 3)
    taus = [float(rescaled_time(plateau_length(L, y, g, 1.0, 1.0), L, g, 1.0)) for g in (1e4, 1e6)]
    if L == 2:
        assert taus[1] - taus[0] == pytest.approx(np.log(100.0) / 2, rel=0.01)
    else:
        assert np.log10(taus[1] / taus[0]) / 2 == pytest.approx(1 - 2 / L, abs=0.02)


def test_gradient_flow_closed_form_l2_and_from_above(x64):
    # L = 2 uncentred: logistic in P with rate 2ηy/γ
    gamma, eta, y, f0 = 10.0, 0.3, 2.0, 0.05
    t = jnp.linspace(0.0, 400.0, 9)
    p0, ps = gamma * f0, gamma * y
    ref = ps / (1 + (ps / p0 - 1) * jnp.exp(-2 * eta * y * t / gamma)) / gamma
    got = gradient_flow(2, y, gamma, eta, t, f0, a0=p0**0.5)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # starting above the target (f0 > y), L = 3: compare with small-step GD
    a0 = (gamma * 3.0) ** (1 / 3)
    eta = 1e-3 * gamma ** (2 / 3)
    run = simulate(3, gamma, eta, 4000, a0, 1.0, centre=False)
    flow = gradient_flow(3, 1.0, gamma, eta, jnp.arange(4001.0), 3.0, a0=a0)
    assert float(jnp.max(jnp.abs(flow - run.f))) < 5e-3


def test_time_collapse_at_three_large_gammas(x64):
    """Uncentred, fixed f0: GD at fixed dτ = η γ^(-2/L) gives one trajectory for all γ."""
    L, f0, dtau, steps = 3, 0.01, 0.05, 600
    gammas = jnp.array([10.0, 100.0, 1000.0])
    a0 = (gammas * f0) ** (1 / L)
    run = simulate(L, gammas, dtau * gammas ** (2 / L), steps, a0, 1.0, centre=False)
    # log-loss gap on the common grid (losses floored at 1e-12, where rounding takes over)
    log_loss = lambda r: np.log(np.maximum(np.asarray(r.loss), 1e-12))
    assert float(run.loss[0, -1]) < 1e-10  # the runs go all the way down
    rescaled_gap = np.max(np.abs(log_loss(run) - log_loss(run)[0]))
    assert rescaled_gap < 1e-6
    # the same η for all γ does not collapse in steps
    raw = simulate(L, gammas, dtau * 100.0 ** (2 / L), steps, a0, 1.0, centre=False)
    raw_gap = np.max(np.abs(log_loss(raw) - log_loss(raw)[1]))
    assert raw_gap > 1.0
    # and the collapsed trajectory is the gradient flow in τ
    tau_flow = gradient_flow(
        L, 1.0, 100.0, dtau * 100.0 ** (2 / L), jnp.arange(steps + 1.0), f0, a0=float(a0[1])
    )
    assert float(jnp.max(jnp.abs(tau_flow - run.f[1]))) < 0.05


def test_staircase_matches_deep_linear_network(x64):
    """Whitened 3-output target: a depth-2 matrix network aligned with U, V, trained by GD."""
    s = jnp.array([4.0, 1.0, 0.25])
    gamma, eta, steps = 100.0, 0.5, 2000  # dτ = η/γ = 0.005
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    orth = lambda k: jnp.linalg.qr(jax.random.normal(k, (3, 3), jnp.float64))[0]
    u, v, r = orth(k1), orth(k2), orth(k3)
    target = u @ jnp.diag(s) @ v.T
    w0 = (r @ v.T, u @ r.T)  # a0 = 1; product U Vᵀ
    c = w0[1] @ w0[0]

    def loss(w):
        return 0.5 * jnp.sum((target - (w[1] @ w[0] - c) / gamma) ** 2)

    def step(w, _):
        g = jax.grad(loss)(w)
        return jax.tree.map(lambda p, q: p - eta * q, w, g), loss(w)

    _, losses = jax.lax.scan(step, w0, None, length=steps)
    f, theory = staircase(2, s, gamma, eta, jnp.arange(float(steps)))
    # exact decoupling: the matrix network's GD is the scalar GD of each mode with y = s_α
    modes = simulate(2, gamma, eta, steps - 1, 1.0, s)
    np.testing.assert_allclose(np.asarray(losses), np.asarray(modes.loss.sum(0)), rtol=1e-9)
    # and the staircase flow is its small-step limit (here η λ ≤ 0.04 on the fastest mode)
    np.testing.assert_allclose(np.asarray(losses), np.asarray(theory), rtol=0.05, atol=1e-6)
    # modes escape in order of decreasing s: three separate drops
    escapes = [int(jnp.argmax(f[:, i] >= 0.5 * s[i])) for i in range(3)]
    assert escapes[0] < escapes[1] < escapes[2] and escapes[1] - escapes[0] > 100


def test_bad_depths_and_arguments():
    with pytest.raises(ConfigError, match="L >= 1"):
        sharpness_at_init(0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="integer"):
        simulate(2.5, 1.0, 0.1, 10)
    with pytest.raises(ConfigError, match="L >= 2"):
        plateau_length(1, 1.0, 10.0, 0.1)
    with pytest.raises(ConfigError, match="gamma"):
        gradient_flow(2, 1.0, -1.0, 0.1, jnp.arange(3.0))
    with pytest.raises(ConfigError, match="threshold"):
        plateau_length(2, 1.0, 10.0, 0.1, threshold=1.5)
    assert theory_slopes(4) == (2.0, 0.5)
