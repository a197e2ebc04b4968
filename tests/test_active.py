"""Active parameters on constructed cases: known top-k, resets, per-layer reports."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.measures._active import (
    activity,
    layer_groups,
    layer_report,
    reset,
    select_active,
    select_least,
    select_random,
    unit_activity,
)
from lazyrich.models import CNN, MLP, functional, scaled


def _pair():
    p0 = {"a": jnp.array([1.0, -2.0, 4.0, 0.0]), "b": jnp.array([[1.0, 1.0], [2.0, -1.0]])}
    p1 = {"a": jnp.array([1.5, -2.0, 8.0, 0.1]), "b": jnp.array([[1.0, 4.0], [2.0, -1.5]])}
    return p0, p1


def test_activity_scores_by_hand():
    p0, p1 = _pair()
    rel = activity(p0, p1, eps=1e-8)
    np.testing.assert_allclose(rel["a"], [0.5, 0.0, 1.0, 0.1 / 1e-8], rtol=1e-6)
    np.testing.assert_allclose(rel["b"], [[0.0, 3.0], [0.0, 0.5]], rtol=1e-6)
    ab = activity(p0, p1, kind="absolute")
    np.testing.assert_allclose(ab["a"], [0.5, 0.0, 4.0, 0.1], rtol=1e-6)
    with pytest.raises(ConfigError, match="kind"):
        activity(p0, p1, kind="squared")


def test_unit_activity_per_output_row_and_channel():
    w0 = jnp.array([[3.0, 4.0], [1.0, 0.0]])
    w1 = jnp.array([[3.0, 4.0 + 5.0], [1.0, 1.0]])
    k0 = jnp.ones((3, 2, 4))  # conv kernel (k, cin, cout)
    k1 = k0.at[..., 2].add(1.0)
    u = unit_activity({"w": w0, "k": k0}, {"w": w1, "k": k1}, eps=0.0)
    np.testing.assert_allclose(u["w"], [5.0 / 5.0, 1.0 / 1.0], rtol=1e-6)
    np.testing.assert_allclose(u["k"], [0.0, 0.0, 1.0, 0.0], rtol=1e-6)


def test_select_active_known_top_k_across_leaves():
    p0, p1 = _pair()
    scores = activity(p0, p1, kind="absolute")  # a: .5 0 4 .1 ; b: 0 3 0 .5
    top25 = select_active(scores, top_percent=25)  # 2 of 8: the 4 and the 3
    assert top25["a"].tolist() == [False, False, True, False]
    assert top25["b"].tolist() == [[False, True], [False, False]]
    thr = select_active(scores, threshold=0.4)
    assert thr["a"].tolist() == [True, False, True, False]
    assert thr["b"].tolist() == [[False, True], [False, True]]
    least = select_least(scores, 25)  # the two zeros... three zeros tie; 2 chosen among them
    n = sum(int(m.sum()) for m in jax.tree.leaves(least))
    assert n == 2
    chosen = jnp.concatenate([scores["a"][least["a"]], scores["b"][least["b"]]])
    np.testing.assert_array_equal(chosen, [0.0, 0.0])
    all_ = select_active(scores, top_percent=100)
    assert all(bool(m.all()) for m in jax.tree.leaves(all_))


def test_select_validation():
    scores = {"a": jnp.ones(4)}
    for k in (0, -1, 100.5):
        with pytest.raises(ConfigError, match=r"must be in \(0, 100\]"):
            select_active(scores, top_percent=k)
    with pytest.raises(ConfigError, match="exactly one"):
        select_active(scores)
    with pytest.raises(ConfigError, match=r"\(0, 100\]"):
        select_random(scores, 0, key=jax.random.key(0))
    with pytest.raises(ConfigError, match=r"\(0, 100\]"):
        select_least(scores, 101)


def test_select_random_count_and_spread():
    params = {"a": jnp.zeros((10, 10)), "b": jnp.zeros(100)}
    mask = select_random(params, 10, key=jax.random.key(0))
    assert int(mask["a"].sum()) + int(mask["b"].sum()) == 20
    masks = [select_random(params, 10, key=jax.random.key(i)) for i in range(20)]
    in_a = np.mean([int(m["a"].sum()) for m in masks])
    assert 7 < in_a < 13  # expected 10 of 20 in the first half


def test_layer_report_mlp_and_cnn():
    model = MLP(3, 4, 2, 2, use_bias=True, key=jax.random.key(0))
    params, _ = functional(model)
    mask = jax.tree.map(lambda x: jnp.zeros(x.shape, bool), params)
    mask = jax.tree_util.tree_map_with_path(
        lambda path, m: m.at[0].set(True) if "layers[0]" in jax.tree_util.keystr(path) else m,
        mask,
    )  # layer 0: 1 row of weight (3) + 1 bias entry
    rep = layer_report(mask)
    assert [r["layer"] for r in rep] == [".layers[0]", ".layers[1]", ".layers[2]"]
    assert [r["size"] for r in rep] == [3 * 4 + 4, 4 * 4 + 4, 4 * 2 + 2]
    assert rep[0]["active"] == 4 and rep[1]["active"] == 0
    np.testing.assert_allclose(rep[0]["fraction"], 4 / 16)
    np.testing.assert_allclose(sum(r["share"] for r in rep), 1.0)

    cnn = CNN((8, 1), 2, 3, key=jax.random.key(1))
    cparams, _ = functional(cnn)
    scores = jax.tree.map(lambda x: jnp.abs(x), cparams)
    crep = layer_report(select_active(scores, top_percent=10))
    assert [r["layer"] for r in crep] == [".conv1", ".conv2", ".fc", ".readout"]
    np.testing.assert_allclose(sum(r["share"] for r in crep), 1.0, rtol=1e-12)
    total = sum(x.size for x in jax.tree.leaves(cparams))
    assert sum(r["active"] for r in crep) == round(0.1 * total)

    sparams, _ = functional(scaled(model, gamma=2.0))
    names = [n for n, _ in layer_groups(sparams)]
    assert names == [".net.layers[0]", ".net.layers[1]", ".net.layers[2]"]


def test_reset_nothing_and_everything():
    model = MLP(3, 5, 2, 2, use_bias=True, key=jax.random.key(0))
    p0, _ = functional(model)
    p1 = jax.tree.map(lambda x: x + 1.0, p0)
    none = jax.tree.map(lambda x: jnp.zeros(x.shape, bool), p0)
    every = jax.tree.map(lambda x: jnp.ones(x.shape, bool), p0)
    chex.assert_trees_all_equal(reset(p1, p0, none), p1)
    chex.assert_trees_all_equal(reset(p1, p0, every), p0)
    # resetting the top 10% most active restores exactly those entries
    p2 = jax.tree.map(lambda x: x.at[0].add(5.0), p1)
    mask = select_active(activity(p0, p2, kind="absolute"), top_percent=10)
    back = reset(p2, p0, mask)
    for b, a0, a2, m in zip(*(jax.tree.leaves(t) for t in (back, p0, p2, mask)), strict=True):
        np.testing.assert_array_equal(b[m], a0[m])
        np.testing.assert_array_equal(b[~m], a2[~m])


# --------------------------------------------------------------------------- scores, controls


def test_layer_score_oracle():
    from lazyrich.measures import layer_scale

    p0 = {"a": {"w": jnp.array([[3.0, 4.0]]), "b": jnp.zeros(2)}, "c": {"w": jnp.array([1.0])}}
    p1 = jax.tree.map(lambda x: x + 1.0, p0)
    # layer a: rms over (3, 4, 0, 0) = sqrt(25 / 4) = 2.5; layer c: 1
    scale = layer_scale(p0)
    assert float(scale["a"]["b"]) == pytest.approx(2.5) and float(scale["c"]["w"]) == 1.0
    s = activity(p0, p1, kind="layer", eps=0.0)
    chex.assert_trees_all_close(s["a"]["w"], jnp.full((1, 2), 0.4))
    chex.assert_trees_all_close(s["c"]["w"], jnp.ones(1))
    with pytest.raises(ConfigError, match=r"unknown activity score \(kind\) 'fancy'"):
        activity(p0, p1, kind="fancy")


def test_matched_controls_oracle():
    from lazyrich.measures import layer_strata, magnitude_strata, select_matched

    key = jax.random.key(0)
    p0 = {"a": {"w": jax.random.normal(key, (20, 10))}, "b": {"w": jnp.arange(30.0) - 15}}
    # a reference with 7 entries in layer a and 4 in layer b
    ref = {"a": {"w": jnp.zeros((20, 10), bool).at[0, :7].set(True)},
           "b": {"w": jnp.zeros(30, bool).at[jnp.array([1, 2, 3, 29])].set(True)}}  # fmt: skip
    strata = layer_strata(p0)
    np.testing.assert_array_equal(np.unique(strata["b"]["w"]), [1])
    for k in range(5):
        m = select_matched(ref, strata, key=jax.random.key(k))
        assert int(m["a"]["w"].sum()) == 7 and int(m["b"]["w"].sum()) == 4
        assert not bool(jnp.any(m["a"]["w"] & ref["a"]["w"]))  # disjoint from the reference
    # magnitude strata: per layer, |w0| quantile bins of equal count (brute force)
    mag = magnitude_strata(p0, bins=5)
    for layer, w in enumerate((p0["a"]["w"].ravel(), p0["b"]["w"])):
        ranks = np.argsort(np.argsort(np.abs(np.asarray(w)), kind="stable"), kind="stable")
        want = layer * 5 + ranks * 5 // w.size
        got = np.asarray(mag["a"]["w"] if layer == 0 else mag["b"]["w"]).ravel()
        np.testing.assert_array_equal(got, want)
    m = select_matched(ref, mag, key=key)
    r, g, s = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]) for t in (ref, m, mag))
    np.testing.assert_array_equal(np.bincount(s[r], minlength=10), np.bincount(s[g], minlength=10))
    # uniform within the stratum: each non-reference entry of layer b drawn with prob 4 / 26
    hits = sum(
        np.asarray(select_matched(ref, strata, key=jax.random.key(k))["b"]["w"]) for k in range(400)
    )
    free = np.ones(30, bool)
    free[[1, 2, 3, 29]] = False
    assert hits[~free].sum() == 0
    np.testing.assert_allclose(hits[free].mean() / 400, 4 / 26, rtol=0.05)
    # a stratum with more reference entries than candidates cannot be matched
    full = {"a": {"w": jnp.ones((20, 10), bool)}, "b": {"w": jnp.zeros(30, bool)}}
    with pytest.raises(ConfigError, match="cannot be matched"):
        select_matched(full, strata, key=key)
    m = select_matched(full, strata, key=key, exclude_reference=False)
    assert bool(jnp.all(m["a"]["w"]))


def test_matched_order_reuse_is_the_same_draw():
    from lazyrich.measures import layer_strata, matched_order, select_matched

    p0 = {"a": {"w": jnp.ones((6, 5))}, "b": {"w": jnp.ones(9)}}
    ref = {"a": {"w": jnp.zeros((6, 5), bool).at[1, :3].set(True)}, "b": {"w": jnp.eye(9)[0] > 0}}
    strata, key = layer_strata(p0), jax.random.key(4)
    order = matched_order(strata, key=key)
    chex.assert_trees_all_equal(
        select_matched(ref, strata, key=key), select_matched(ref, strata, key=key, order=order)
    )
