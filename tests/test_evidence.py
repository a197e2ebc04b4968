"""`lazyrich.evidence`: the verdict rule's truth table, intervals against scipy, coverage by
simulation, and claims' validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lazyrich import evidence
from lazyrich.errors import ConfigError


def _claim(**kw) -> evidence.Claim:
    base = dict(id="c", paper="p", claim="x equals theory", theory=1.0, margin=0.1, reason="r")
    return evidence.Claim(**{**base, **kw})


# ---- the one rule ---------------------------------------------------------------------------

TRUTH = [
    # kind, (lo, hi), verdict; theory 1, margin 0.1
    ("equal", (0.95, 1.05), "agrees"),
    ("equal", (0.9, 1.1), "agrees"),  # the band's edges belong to it
    ("equal", (0.85, 1.05), "undecided"),  # straddles the lower edge
    ("equal", (0.5, 1.5), "undecided"),  # wide: never agrees
    ("equal", (1.11, 1.2), "disagrees"),
    ("equal", (0.7, 0.89), "disagrees"),
    ("equal", (1.02, 1.02), "agrees"),  # a precise value 2% off agrees with a 10% margin
    ("above", (1.2, 1.5), "agrees"),  # above theory + margin
    ("above", (1.05, 1.5), "undecided"),
    ("above", (0.5, 1.1), "disagrees"),  # at most theory + margin: practically no effect
    ("above", (0.5, 0.9), "disagrees"),
    ("below", (0.1, 0.8), "agrees"),
    ("below", (0.85, 0.95), "undecided"),
    ("below", (0.9, 1.4), "disagrees"),
    ("equal", (None, None), "undecided"),
    ("above", (None, 2.0), "undecided"),
]


@pytest.mark.parametrize("kind, interval, want", TRUTH)
def test_verdict_truth_table(kind, interval, want):
    assert evidence.verdict(_claim(kind=kind), *interval) == want


def test_verdict_with_infinite_bounds():
    c = _claim(kind="above", theory=0.0, margin=0.0)
    assert evidence.verdict(c, 0.1, math.inf) == "agrees"
    assert evidence.verdict(c, -math.inf, -0.1) == "disagrees"
    assert evidence.verdict(_claim(), -math.inf, math.inf) == "undecided"


def test_judge_row_and_smoke():
    c = _claim(theory=2.0, margin=0.2)
    row = evidence.judge(c, [1.9, 2.1, 2.0, 2.05, 1.95])
    assert row["verdict"] == "agrees" and row["measured"]["n"] == 5
    assert row["samples"] == [1.9, 2.1, 2.0, 2.05, 1.95]
    assert "2 ± 0.2" in row["rule"]
    wide = evidence.judge(c, [1.0, 3.0, 2.0])
    assert wide["verdict"] == "undecided"
    w = wide["measured"]["hi"] - wide["measured"]["lo"]
    assert wide["width_vs_margin"] == pytest.approx(w / 0.4)
    assert evidence.seeds_to_decide(wide) == math.ceil(3 * (w / 0.4) ** 2)
    assert evidence.judge(c, [2.0, 2.0, 2.01], smoke=True)["verdict"] == "smoke"


@pytest.mark.parametrize(
    "field, value",
    [("margin", -0.1), ("theory", math.nan), ("kind", "near"), ("estimator", "z"), ("id", " ")],
)
def test_bad_claims_are_one_line(field, value):
    with pytest.raises(ConfigError, match=field) as e:
        _claim(**{field: value})
    assert "\n" not in str(e.value)


def test_claim_round_trips_through_a_dict():
    c = _claim(kind="below", resolution=0.25, theory_text="1/L", figure="figures/a.png")
    assert evidence.Claim.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="unknown field"):
        evidence.Claim.from_dict({**c.to_dict(), "verdict": "agrees"})


# ---- intervals against scipy ---------------------------------------------------------------


def test_t_interval_equals_scipy():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=7)
    m = evidence.t_interval(x)
    lo, hi = stats.t.interval(0.9, 6, loc=x.mean(), scale=stats.sem(x))
    assert (m.value, m.n) == (pytest.approx(x.mean(), rel=1e-14), 7)
    assert m.lo == pytest.approx(lo, rel=1e-12) and m.hi == pytest.approx(hi, rel=1e-12)


def test_t_interval_skips_non_finite_units_and_needs_two():
    m = evidence.t_interval([1.0, None, math.nan, 3.0])
    assert m.n == 2 and m.value == 2.0 and len(m.samples) == 4
    one = evidence.t_interval([1.0, math.inf])
    assert one.n == 1 and one.lo is None and one.hi is None
    assert evidence.t_interval([]).value is None


def test_resolution_widens_a_degenerate_interval():
    m = evidence.t_interval([0.5, 0.5, 0.5], resolution=0.25)
    assert (m.lo, m.hi) == (0.375, 0.625)
    wide = evidence.t_interval([0.0, 1.0, 2.0], resolution=0.25)  # already wider: unchanged
    assert wide.lo == pytest.approx(evidence.t_interval([0.0, 1.0, 2.0]).lo)


@pytest.mark.parametrize("method", ["bootstrap", "bca"])
def test_bootstrap_agrees_with_scipy(method):
    x = np.random.default_rng(1).lognormal(0.0, 0.6, size=25)
    m = evidence.bootstrap_interval(x, method=method, n_resamples=20000)
    ref = stats.bootstrap(
        (x,), np.mean, confidence_level=0.9, n_resamples=20000,
        method="percentile" if method == "bootstrap" else "BCa", rng=np.random.default_rng(2),
    ).confidence_interval  # fmt: skip
    # two independent resamplings: the bounds agree to Monte-Carlo error (~1% of the width)
    width = ref.high - ref.low
    assert abs(m.lo - ref.low) < 0.03 * width and abs(m.hi - ref.high) < 0.03 * width


def test_bootstrap_re_derives_exactly():
    x = [0.1, 0.4, 0.35, 0.2, 0.3]
    assert evidence.bootstrap_interval(x, method="bca") == evidence.bootstrap_interval(
        x, method="bca"
    )


# ---- coverage by simulation -----------------------------------------------------------------


def _coverage(method: str, draw, truth: float, n: int, trials: int = 2000) -> float:
    rng = np.random.default_rng(12345)
    hits = 0
    for _ in range(trials):
        x = draw(rng, n)
        if method == "t":
            m = evidence.t_interval(x)
        else:
            m = evidence.bootstrap_interval(x, method=method, n_resamples=999)  # type: ignore[arg-type]
        assert m.lo is not None and m.hi is not None
        hits += m.lo <= truth <= m.hi
    return hits / trials


def test_t_interval_covers_90_percent():
    cover = _coverage("t", lambda r, n: r.normal(0.7, 0.3, n), 0.7, n=5)
    assert 0.87 <= cover <= 0.93, cover


@pytest.mark.parametrize("method", ["bootstrap", "bca"])
def test_bootstrap_covers_90_percent(method):
    cover = _coverage(method, lambda r, n: r.normal(-1.0, 0.5, n), -1.0, n=40)
    assert 0.87 <= cover <= 0.93, cover
