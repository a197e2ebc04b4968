"""The DMFT solvers against the lazy closed form, each other, a second-moment closed form and
finite networks (float64)."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.kernels import infinite_kernels
from lazyrich.models import MLP
from lazyrich.theory import dmft, effective_rate, kernel_gd_predictions, rich_vs_network
from lazyrich.theory._dmft_linear import deep_linear_solve, two_layer_linear


def problem(p=8, q=4, d=3, seed=0):
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (p + q, d)))
    y = np.sin(2 * x[:, 0]) + 0.3
    return x[:p], y[:p], x[p:], y[p:]


def lazy_losses(xtr, ytr, xte, yte, *, depth, activation, gamma, eta0, steps, width=64):
    """The lazy theory as a user would build it: the μP net's infinite-width Θ_net (through
    neural-tangents) and the effective rate η0·N/γ²."""
    net = MLP(
        xtr.shape[1],
        width,
        depth - 1,
        1,
        activation=activation,
        parameterization="mup",
        dtype=jnp.float64,
        key=jax.random.key(1),
    )
    x = jnp.asarray(np.concatenate([xtr, xte]))
    theta = infinite_kernels(net, x, tanh_degree=64).ntk
    p = xtr.shape[0]
    pred = kernel_gd_predictions(
        theta[:p, :p],
        theta[p:, :p],
        jnp.asarray(ytr),
        jnp.asarray(steps),
        eta=effective_rate(eta0, gamma=gamma, lr_multiplier=net.lr_multiplier),
        method="gd",
        y_test=jnp.asarray(yte),
    )
    return np.asarray(pred.train_loss), np.asarray(pred.test_loss)


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1)))


@pytest.mark.parametrize(
    ("depth", "activation", "gamma"),
    [(2, "linear", 1e-6), (4, "linear", 1e-6), (2, "tanh", 1e-7), (2, "relu", 1e-7)],
)
def test_lazy_limit_is_the_ntk_closed_form(x64, depth, activation, gamma):
    """Oracle 1: γ → 0 at fixed η0/γ² is kernel GD with the infinite-width NTK."""
    xtr, ytr, xte, yte = problem()
    steps = np.arange(0, 25, 4)
    eta0 = 0.6 / depth * gamma**2
    ds = dmft(
        xtr,
        ytr,
        xte,
        y_test=yte,
        depth=depth,
        activation=activation,
        gamma=[gamma, 1.0],
        eta0=eta0,
        steps=steps,
        samples=512,
        batches=2,
    )
    tr, te = lazy_losses(
        xtr, ytr, xte, yte, depth=depth, activation=activation, gamma=gamma, eta0=eta0, steps=steps
    )
    assert tr[-1] < 0.7 * tr[0]  # the loss moves: the comparison is not of constants
    assert rel(ds.train_loss.values[0], tr) < 1e-6
    assert rel(ds.test_loss.values[0], te) < 1e-6
    # at γ = 1 with the same η0 the features move and the losses differ from the lazy ones
    assert rel(ds.train_loss.values[1, 1:], ds.train_loss.values[0, 1:]) > 1e-3


def test_sampling_agrees_with_exact_linear(x64):
    """Oracle 2: for φ = identity the sampled sites reproduce the algebraic solution."""
    xtr, ytr, xte, yte = problem(seed=1)
    kw: dict[str, Any] = dict(
        depth=2,
        activation="linear",
        gamma=[1.0, 3.0],
        eta0=[0.4, 2.0],
        steps=np.arange(0, 30, 5),
        y_test=yte,
    )
    exact = dmft(xtr, ytr, xte, **kw)
    sampled = dmft(
        xtr, ytr, xte, solver="sampling", samples=8192, batches=8, key=jax.random.key(3), **kw
    )
    for name in ("train_loss", "test_loss"):
        err = sampled[f"{name}_mc_error"].values[:, 1:]
        gap = np.abs(sampled[name].values - exact[name].values)[:, 1:]
        assert np.all(gap < 4 * err + 1e-12), (gap / err).max()
        assert np.all(err < 0.02 * exact[name].values[:, 1:])  # a test that can fail
    lazy = dmft(xtr, ytr, xte, **{**kw, "gamma": [1e-6, 1e-6], "eta0": [0.4e-12, 2.0e-12]})
    rich_gap = np.abs(exact.train_loss.values - lazy.train_loss.values)[:, -1]
    assert np.all(rich_gap > 10 * sampled.train_loss_mc_error.values[:, -1])


def test_three_layer_sampling(x64):
    """L = 3 (hidden-to-hidden responses A and B): the sampled sites agree with the exact
    deep-linear solution at γ = 1 (oracle 2), and for tanh with the lazy NTK closed form at
    small γ, both within the reported Monte-Carlo error."""
    xtr, ytr, xte, yte = problem(p=6, q=2, seed=0)
    steps = np.arange(0, 7)
    kw: dict[str, Any] = dict(depth=3, steps=steps, y_test=yte, samples=1024, batches=8)
    exact = dmft(xtr, ytr, xte, activation="linear", gamma=[1.0], eta0=[0.3], **kw)
    sampled = dmft(
        xtr,
        ytr,
        xte,
        activation="linear",
        gamma=[1.0],
        eta0=[0.3],
        solver="sampling",
        key=jax.random.key(1),
        **kw,
    )
    err = sampled.train_loss_mc_error.values[0, 1:]
    gap = np.abs(sampled.train_loss.values - exact.train_loss.values)[0, 1:]
    assert np.all(gap < 4 * err), (gap / err).max()
    assert np.all(err < 0.05 * exact.train_loss.values[0, 1:])
    gamma = 1e-4
    lazy = dmft(
        xtr,
        ytr,
        xte,
        activation="tanh",
        gamma=[gamma],
        eta0=[0.5 * gamma**2],
        key=jax.random.key(2),
        **kw,
    )
    tr, _ = lazy_losses(
        xtr,
        ytr,
        xte,
        yte,
        depth=3,
        activation="tanh",
        gamma=gamma,
        eta0=0.5 * gamma**2,
        steps=steps,
    )
    err = lazy.train_loss_mc_error.values[0, 1:]
    assert np.all(np.abs(lazy.train_loss.values[0, 1:] - tr[1:]) < 4 * err)
    assert tr[-1] < 0.8 * tr[0]


def whitened_moments(x, y, xte, *, gamma, eta0, steps):
    """Oracle 5's closed form: a two-layer linear net `f = m·x/(γ√D)`, `m = Wᵀw/N`, with
    whitened inputs (XᵀX/P = I). With `u = Σ_μ Δ_μ x_μ` one GD step is W += a w uᵀ,
    w += a W u (a = η0/(γ√D)), so m, Q = WᵀW/N and r = w·w/N close:
    m' = m + a (Q + r) u + a² (m·u) u, Q' = Q + a (m uᵀ + u mᵀ) + a² r u uᵀ,
    r' = r + 2a m·u + a² uᵀQu. At infinite width m = 0, Q = I, r = 1 at init; with
    b = Xᵀy/P, u = b − m/(γ√D) stays along b̂, so everything is three scalars
    (m = μ b̂, Q = I + (q − 1) b̂b̂ᵀ, r) and the loss is `½(|y|²/P − |b|²) + ½ ν²`,
    ν = |b| − μ/(γ√D)."""
    p, d = x.shape
    b = x.T @ y / p
    beta = np.linalg.norm(b)
    a = eta0 / (gamma * np.sqrt(d))
    mu, q, r = 0.0, 1.0, 1.0
    losses, outputs = [], []
    for t in range(max(steps) + 1):
        nu = beta - mu / (gamma * np.sqrt(d))
        if t in steps:
            losses.append(0.5 * (y @ y / p - beta**2) + 0.5 * nu**2)
            outputs.append(mu * (xte @ b) / beta / (gamma * np.sqrt(d)))
        mu, q, r = (
            mu + a * nu * (q + r) + a**2 * nu**2 * mu,
            q + 2 * a * mu * nu + a**2 * r * nu**2,
            r + 2 * a * mu * nu + a**2 * q * nu**2,
        )
    return np.asarray(losses), np.asarray(outputs)


def test_two_layer_linear_whitened_closed_form(x64):
    """Oracle 5: the DMFT equals the second-moment dynamics of a two-layer linear network."""
    p, d = 16, 4
    rng = np.random.default_rng(0)
    x = np.sqrt(p) * np.linalg.qr(rng.normal(size=(p, d)))[0]  # XᵀX/P = I
    y = x @ rng.normal(size=d) / np.sqrt(d) + 0.3 * rng.normal(size=p)
    xte = rng.normal(size=(3, d))
    steps = [0, 1, 2, 5, 10, 20, 40]
    gammas, eta0s = np.array([0.3, 1.0, 4.0]), np.array([0.05, 0.5, 4.0])
    ds = dmft(x, y, xte, depth=2, activation="linear", gamma=gammas, eta0=eta0s, steps=steps)
    for i, (g, e) in enumerate(zip(gammas, eta0s, strict=True)):
        loss, out = whitened_moments(x, y, xte, gamma=g, eta0=e, steps=steps)
        np.testing.assert_allclose(ds.train_loss.values[i], loss, rtol=1e-10)
        np.testing.assert_allclose(ds.test_output.values[i], out, rtol=1e-9, atol=1e-12)
    # a rich run: the loss curve is not the lazy exponential of the same initial speed
    assert ds.train_loss.values[2, -1] < 0.5 * ds.train_loss.values[2, 0]


@pytest.mark.parametrize(
    ("activation", "widths", "seeds"), [("linear", [128, 512, 2048], 16), ("tanh", [128, 2048], 12)]
)
def test_networks_converge_to_the_dmft_not_the_ntk(x64, activation, widths, seeds):
    """Oracles 3 and 4 at γ = 1: the mean over seeds of max_t |network − DMFT| (train loss)
    falls at least 2× from width 128 to 2048 (theory: N^(-1/2), 4×), and the DMFT is farther
    from the lazy NTK theory than the widest networks are from the DMFT."""
    xtr, ytr, xte, yte = problem(seed=0)
    ds = rich_vs_network(
        xtr,
        ytr,
        xte,
        yte,
        depth=2,
        activation=activation,
        gamma=[1.0],
        eta0=[0.5],
        steps=[0, 5, 10, 20, 30],
        widths=widths,
        seeds=range(seeds),
        samples=16384,
        batches=4,
    )
    assert not ds.diverged.values.any()
    gap = np.abs(ds.train_loss - ds.dmft_train_loss).max("step").mean("seed").values[0]
    slope = np.polyfit(np.log(widths), np.log(gap), 1)[0]
    print(f"{activation}: mean |network - DMFT| {gap}, fitted exponent {slope:.2f}")
    assert gap[0] > 2 * gap[-1]
    assert -1.0 < slope < -0.25
    lazy_gap = float(np.abs(ds.dmft_train_loss - ds.ntk_train_loss).max())
    assert lazy_gap > 3 * gap[-1]
    if activation != "linear":  # the theory's own error is well below the networks' distance
        assert float(ds.dmft_train_loss_mc_error.max()) < 0.2 * gap[-1]
    np.testing.assert_allclose(ds.train_loss.values[..., 0], 0.5 * np.mean(ytr**2))


def test_general_linear_solver_is_the_two_layer_recursion(x64):
    """The L-layer causal solver at L = 2 equals the one-step recursion used for L = 2."""
    xtr, ytr, xte, _ = problem(seed=2)
    x = jnp.asarray(np.concatenate([xtr, xte]))
    kx = x @ x.T / x.shape[1]
    y = jnp.asarray(np.concatenate([ytr, np.zeros(len(xte))]))
    w = jnp.asarray(np.r_[np.full(len(xtr), 1 / len(xtr)), np.zeros(len(xte))])
    args = (kx, y, w, jnp.asarray(2.0), jnp.asarray(1.5))
    general = deep_linear_solve(*args, depth=2, steps=12)
    recursion = two_layer_linear(*args, steps=12)
    np.testing.assert_allclose(general, recursion, rtol=1e-12, atol=1e-14)
    assert float(jnp.max(jnp.abs(recursion[-1]))) > 0.1


def test_bad_input_is_one_line():
    xtr, ytr, xte, _ = problem()
    base: dict[str, Any] = dict(depth=2, activation="linear", gamma=1.0, eta0=0.1, steps=[0, 1])
    for change, match in [
        ({"depth": 1}, "depth"),
        ({"activation": "gelu"}, "activation"),
        ({"gamma": -1.0}, "gamma"),
        ({"eta0": [0.1, 0.2]}, "eta0"),
        ({"steps": [3, 1]}, "steps"),
        ({"activation": "tanh", "depth": 4}, "sampling solver"),
        ({"activation": "tanh", "solver": "exact"}, "exact solver"),
    ]:
        with pytest.raises(ConfigError, match=match):
            dmft(xtr, ytr, xte, **{**base, **change})
    with pytest.raises(ConfigError, match="one output"):
        dmft(xtr, np.stack([ytr, ytr], 1), xte, **base)


def test_rich_vs_network_measures_are_the_runs_own(x64):
    """A measure recorded through `rich_vs_network` equals the same quantity computed on the
    network trained here by hand (init key `fold_in(key(seed), 0)`, GD at η0·N), at every
    (γ, N, seed, step); a dict measure is named `name_key`; a clashing name is refused."""
    import itertools

    import equinox as eqx

    from lazyrich.models import functional, scaled

    xtr, ytr, xte, yte = problem(seed=3)
    gammas, eta0s, steps, widths, seeds = [0.5, 2.0], [0.3, 1.2], [0, 1, 3, 6], [8, 16], [0, 1]
    measures = {
        "pred": lambda s: s.apply(s.params, s.data.x_train)[:, 0],
        "stats": lambda s: {"sq": sum(jnp.sum(a**2) for a in jax.tree.leaves(s.params))},
    }
    ds = rich_vs_network(
        xtr, ytr, xte, yte, depth=2, activation="linear", gamma=gammas, eta0=eta0s, steps=steps,
        widths=widths, seeds=seeds, measures=measures,
    )  # fmt: skip
    assert ds.pred.dims[:4] == ("gamma", "width", "seed", "step")
    assert ds.pred.shape == (2, 2, 2, 4, len(ytr)) and ds.stats_sq.shape == (2, 2, 2, 4)
    np.testing.assert_allclose(ds.pred.values[..., 0, :], 0.0, atol=1e-12)  # centred output

    @eqx.filter_jit
    def gd_step(params, apply, lr):
        loss = lambda p: 0.5 * jnp.mean((apply(p, jnp.asarray(xtr))[:, 0] - ytr) ** 2)
        return jax.tree.map(lambda a, b: a - lr * b, params, jax.grad(loss)(params))

    runs = itertools.product(enumerate(gammas), enumerate(widths), enumerate(seeds))
    for (i, g), (j, n), (k, s) in runs:
        net = MLP(3, n, 1, 1, activation="linear", parameterization="mup",
                  key=jax.random.fold_in(jax.random.key(s), 0))  # fmt: skip
        params, apply = functional(scaled(net, gamma=g, centre=True))
        for t in range(steps[-1] + 1):
            if t in steps:
                r = steps.index(t)
                pred = np.asarray(apply(params, jnp.asarray(xtr))[:, 0])
                sq = sum(float(jnp.sum(a**2)) for a in jax.tree.leaves(params))
                np.testing.assert_allclose(ds.pred.values[i, j, k, r], pred, rtol=1e-9, atol=1e-12)
                np.testing.assert_allclose(ds.stats_sq.values[i, j, k, r], sq, rtol=1e-10)
                np.testing.assert_allclose(
                    ds.train_loss.values[i, j, k, r], 0.5 * np.mean((pred - ytr) ** 2), rtol=1e-9
                )
            params = gd_step(params, apply, eta0s[i] * n)
    assert float(np.abs(ds.pred.values[..., -1, :]).max(-1).min()) > 1e-2  # every run moved
    with pytest.raises(ConfigError, match="clashes"):
        rich_vs_network(
            xtr, ytr, xte, yte, depth=2, activation="linear", gamma=1.0, eta0=0.1, steps=[0, 1],
            widths=[8], seeds=[0], measures={"ntk_gap": measures["pred"]},
        )  # fmt: skip
