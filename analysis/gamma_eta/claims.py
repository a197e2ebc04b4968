"""The γ–η study's claims, declared from the config alone (`declare`) and judged per seed
(`judge_case`) by `lazyrich.evidence`'s one rule.

Per case (task × loss × architecture × depth L weight layers), the unit is the seed:

- **1, 2, 2b** — the slopes of η*(γ) (γ ≪ 1: 2; γ ≫ 1: 2/L) and of η_max(γ) (γ ≫ 1: 2/L):
  per seed, a broken power law fitted to that seed's η* (or η_max) over the γ grid
  (`per_seed`). η* and η_max are lattice values (1/eta_per_decade decade apart), so a slope
  over a side of the γ grid spanning S decades moves in steps of about
  (1/eta_per_decade)/S when one end moves one lattice step: that is the claim's `resolution`.
- **3a, 3b** — the slopes of the sharpness at the end of training, measured per seed at that
  seed's η* (theory −2 and −2/L).
- **4** — the plateau end's growth with γ at η0 ∝ γ^(2/L) (per-seed log-log slope) against
  the deep-linear toy's slope at a0 = 1 over the same γ.
- **5** — the time collapse: per seed, the aligned gap at η0 ∝ γ^(2/L) over the smaller gap
  of the other schedules; below 1.
- **6** — the best γ: per seed log10 γ* (γ of the seed's lowest final loss); above 0.

Margins come from the theory alone: a rich slope 2/L is told from the nearest other depth's
2/(L ± 1) by half the gap between them; the lazy slope 2 from the rich slope of the same depth
by half of 2 − 2/L; the toy's plateau slope from the nearest other depth's toy slope by half
their gap.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyrich import evidence
from lazyrich.evidence import Claim

from .analyse import rich_indices
from .collapse import toy_matching_a0, toy_plateau_slope
from .config import Config, case_label, cases_of, validate

PAPER = "Atanasov et al. 2024 (arXiv 2410.04642)"
COLLAPSE_MARGIN = 0.1


def rich_margin(depth: int) -> tuple[float, str]:
    """Half the gap from 2/L to the nearest other depth's 2/L' (L' = L ± 1, L' ≥ 2)."""
    near = min((d for d in (depth - 1, depth + 1) if d >= 2), key=lambda d: abs(2 / d - 2 / depth))
    gap = abs(2 / depth - 2 / near)
    return gap / 2, f"half the gap |2/{depth} − 2/{near}| = {gap:.3f} to the L = {near} prediction"


def lazy_margin(depth: int) -> tuple[float, str]:
    """Half the gap from the lazy slope 2 to the rich slope 2/L of the same depth."""
    gap = 2 - 2 / depth
    return gap / 2, f"half the gap 2 − 2/{depth} = {gap:.3f} to the rich slope of the same depth"


def _slope_resolution(eta_per_decade: float, span: float) -> tuple[float, str]:
    step = 1 / eta_per_decade
    res = step / span if span > 0 else step
    return res, (
        f"; η is a lattice value ({step:.3g} decade apart): over a {span:.3g}-decade side of "
        f"the γ grid one lattice step at one end moves the slope by {res:.3g} (the resolution)"
    )


def _toy_margin(gammas: np.ndarray, depth: int, toy: float) -> tuple[float, str]:
    others = {d: toy_plateau_slope(gammas, d) for d in (depth - 1, depth + 1) if d >= 2}
    near = min(others, key=lambda d: abs(others[d] - toy))
    gap = round(abs(others[near] - toy), 4)
    return gap / 2, (
        f"half the gap {gap:.3f} to the toy's slope at L = {near} over the same γ (the "
        "nearest competing depth)"
    )


def declare(c: Config) -> list[Claim]:
    """Every claim this config measures, in the order of the run's rows (config only)."""
    gammas, _ = validate(c)
    ri = rich_indices(gammas, c.rich_gammas, c.gamma_per_decade)
    small = round(-math.log10(float(gammas.min())), 9) if gammas.min() < 1 else 0.0
    large = round(math.log10(float(gammas.max())), 9) if gammas.max() > 1 else 0.0
    out: list[Claim] = []
    for task, loss, arch, depth in cases_of(c):
        label = case_label(task, loss, arch, depth)
        out += _case(c, label, depth, gammas[ri], small, large)
    return out


def _case(c: Config, label: str, L: int, rich: np.ndarray, small: float, large: float):
    lazy_m, lazy_why = lazy_margin(L)
    rich_m, rich_why = rich_margin(L)
    res_s, why_s = _slope_resolution(c.eta_per_decade, small)
    res_l, why_l = _slope_resolution(c.eta_per_decade, large)
    where = f"(L = {L} weight layers)"
    eta_fig, sharp_fig = "figures/eta_star_fit.png", "figures/sharpness.png"
    out = [
        Claim(id=f"{label} 1", claim=f"η* ∝ γ² for γ ≪ 1: per-seed slope of η*(γ) {where}",
              theory=2.0, margin=lazy_m, reason=lazy_why + why_s, figure=eta_fig,
              resolution=res_s, theory_text="2", paper=PAPER),
        Claim(id=f"{label} 2", claim=f"η* ∝ γ^(2/L) for γ ≫ 1: per-seed slope of η*(γ) {where}",
              theory=2 / L, margin=rich_m, reason=rich_why + why_l, figure=eta_fig,
              resolution=res_l, theory_text=f"2/L = {2 / L:.3g}", paper=PAPER),
        *_budget(c, label, L, rich_m, where, eta_fig),
        Claim(id=f"{label} 2b",
              claim=f"η_max ∝ γ^(2/L) for γ ≫ 1: per-seed slope of η_max(γ) {where}",
              theory=2 / L, margin=rich_m, reason=rich_why + why_l, figure=eta_fig,
              resolution=res_l, theory_text=f"2/L = {2 / L:.3g}", paper=PAPER),
        Claim(id=f"{label} 3a",
              claim=f"sharpness at η* ∝ γ^(−2) for γ ≪ 1: per-seed slope at the end {where}",
              theory=-2.0, margin=lazy_m, reason=lazy_why, figure=sharp_fig,
              theory_text="−2", paper=PAPER),
        Claim(id=f"{label} 3b",
              claim=f"sharpness at η* ∝ γ^(−2/L) for γ ≫ 1: per-seed slope at the end {where}",
              theory=-2 / L, margin=rich_m, reason=rich_why, figure=sharp_fig,
              theory_text=f"−2/L = −{2 / L:.3g}", paper=PAPER),
    ]  # fmt: skip
    staircase = Claim(
        id=f"{label} 4b",
        claim="ultra-rich staircase: the test-loss curve at the largest rich γ, each seed at its "
        "own η*, drops more than once (steps counted per seed; drops separated by less than a "
        f"doubling of time count as one) {where}",
        theory=1.0,
        kind="above",
        margin=0.0,
        reason="the paper's 'sometimes more staircase drops': one drop is the plain plateau "
        "then drop, so any mean count above one is a staircase (a count has no smaller "
        "practical difference)",
        figure="figures/ultra_rich.png",
        theory_text="1 drop",
        paper=PAPER,
    )
    if c.collapse and rich.size >= 2:
        toy = round(toy_plateau_slope(rich, L), 4)  # a simulation: rounded, so plans compare
        toy_m, toy_why = _toy_margin(rich, L, toy)
        gs = ", ".join(f"{g:.3g}" for g in rich)
        out.append(
            Claim(
                id=f"{label} 4",
                claim="toy comparison, not the paper's prediction: the plateau end (0.9× the "
                f"initial loss) grows with γ ({gs}) at η0 ∝ γ^(2/L) with the log-log slope of "
                "the scalar deep-linear toy at initial weight a0 = 1 (the paper gives the time "
                "scaling τ = η γ^(−2/L) t, not the plateau's prefactor; the toy's slope over "
                f"finite γ depends on a0) {where}",
                theory=toy,
                margin=toy_m,
                reason=toy_why,
                figure="figures/collapse.png",
                theory_text=f"toy slope (a0 = 1) = {toy:.3g}",
                paper=PAPER,
            )  # fmt: skip
        )
        out.append(staircase)
        out.append(
            Claim(
                id=f"{label} 5",
                claim="rich curves collapse in τ = η γ^(−2/L) t: the aligned gap at "
                "η0 ∝ γ^(2/L) over the smaller gap with η0 ∝ γ or one η0 is below 1",
                theory=1.0,
                kind="below",
                margin=COLLAPSE_MARGIN,
                reason="a rescaling that removes less than a tenth of the gap is practically "
                "no collapse",
                figure="figures/collapse.png",
                theory_text="ratio 1",
                paper=PAPER,
            )  # fmt: skip
        )
    if rich.size >= 1 and not (c.collapse and rich.size >= 2):
        out.append(staircase)
    out.append(
        Claim(
            id=f"{label} 6",
            claim="the best online loss is at large γ: log10 γ* > 0 (γ* of each seed's lowest "
            "final loss)",
            theory=0.0,
            kind="above",
            margin=0.0,
            reason="γ = 1 is the lazy/rich boundary, the theory's only scale; γ* is a grid "
            f"value, and the grid's spacing ({1 / c.gamma_per_decade:.3g} decade, the "
            "resolution) is its band",
            figure="figures/loss_heatmap.png",
            resolution=1 / c.gamma_per_decade,
            theory_text="log10 γ* = 0",
            paper=PAPER,
        )  # fmt: skip
    )
    return out


def _budget(c: Config, label: str, L: int, margin: float, where: str, figure: str) -> list:
    """The step-budget control of claim 2 (when --budget-factor is on), as its own row."""
    if not c.budget_factor:
        return []
    f = f"{c.budget_factor:g}"
    return [
        Claim(
            id=f"{label} 2-budget",
            claim=f"control of 2 (step budget): the per-seed rich η* slope (least squares over "
            f"γ > 1) changes by less than the margin when the runs at γ ≥ 1 are {f}× longer "
            f"(control − main, same seeds and η windows) {where}",
            theory=0.0,
            margin=margin,
            reason="a change below half the gap to the nearest other depth's 2/L' cannot move "
            "the slope to another depth's prediction: the budget is then long enough for claim 2",
            figure=figure,
            theory_text="no change",
            paper=PAPER,
        )
    ]


def judge_case(
    claims: list[Claim], label: str, s: dict[str, Any], collapse: dict | None
) -> dict[str, dict[str, Any]]:
    """Rows of `claims` (this case's, from `declare`) measured on the case's summary `s` and
    collapse analysis, keyed by claim id."""
    per = s.get("per_seed", {})
    slopes = per.get("slopes", {})
    flagged = per.get("plateau_flagged_gammas", [])
    left = ", ".join(f"seed {k}: {len(v)}" for k, v in enumerate(flagged) if v)
    left = f"γ still on their plateau at the seed's η*, left out of its fit: {left}" if left else ""
    ratios = edge_ratios(s)
    rows = {}
    for claim in claims:
        suffix = claim.id[len(label) + 1 :]
        samples, note = _measure(suffix, slopes, collapse, s, claim, left, ratios)
        rows[claim.id] = evidence.judge(claim, samples, note=note or None)
    return rows


def _measure(suffix, slopes, collapse, s, claim, left, ratios) -> tuple[list[float], str]:
    fits = {
        "1": ("eta_star", "small"), "2": ("eta_star", "large"), "2b": ("eta_max", "large"),
        "3a": ("sharpness", "small"), "3b": ("sharpness", "large"),
    }  # fmt: skip
    if suffix in fits:
        key, side = fits[suffix]
        values = slopes.get(key, {}).get(side, [])
        notes = [f"per-seed slopes: {_fmt(values)}"] if values else ["not measured"]
        if key != "eta_max" and left:
            notes.append(left)
        if suffix in ("2", "3b") and ratios:
            notes.append(ratios)
        if values and not np.all(np.isfinite(values)):
            notes.append("— : a seed with fewer than 5 γ of finite, unflagged values (no fit)")
        return values, "; ".join(notes)
    if suffix == "2-budget":
        b = s.get("budget_control") or {}
        if not b:
            return [], "not measured: no budget control"
        note = (
            f"per-seed rich slope at {b['steps']} steps: {_fmt(b['control'])}; at the main "
            f"budget: {_fmt(b['main'])}"
        )
        return b["change"], note
    if suffix == "4b":
        st = s.get("staircase")
        if not st:
            return [], "not measured: no rich γ on the grid"
        note = (
            f"steps per seed at γ = {st['gamma']:.3g}, each at its own η*: "
            f"{_fmt(st['steps_per_seed'])} (η*: {_fmt(st['eta_per_seed'])})"
        )
        return st["steps_per_seed"], note
    if suffix == "6":
        best = s.get("best_gamma_per_seed", [])
        logs = [math.log10(g) if g and np.isfinite(g) else math.nan for g in best]
        return logs, f"γ* per seed: {_fmt(best)}"
    if collapse is None:
        return [], "not measured: no collapse runs (no finite η* at the rich γ)"
    if suffix == "4":
        values = collapse["plateau_slope_per_seed"]
        return values, _plateau_note(collapse, s["depth"], evidence.measure(claim, values))
    g, L = collapse["gap_decades"], s["depth"]
    ratios5 = [
        a / (min(b, c) if L != 2 else c) if min(b, c) > 0 else math.nan
        for a, b, c in zip(g["2/L"], g["1"], g["0"], strict=True)
    ]
    note = (
        f"gaps (decades, per seed) 2/L: {_fmt(g['2/L'])}; exponent 1: {_fmt(g['1'])}; "
        f"no rescaling: {_fmt(g['0'])}" + ("; L = 2: exponent 1 is 2/L" if L == 2 else "")
        + _unaligned(collapse)
    )  # fmt: skip
    return ratios5, note


def edge_ratios(s: dict) -> str | None:
    """`η*/η_max` at each γ ≥ 1 (the rich side, seed-mean read-out), and what a drift means.

    If the ratio grows with γ, η* is not a fixed fraction of the stability edge and its slope
    is steeper than η_max's: within the fixed step budget the best η moves toward the edge at
    the γ whose plateaus are longest. Part of the note of claims 2 and 3b (the sharpness is
    measured at η*).
    """
    star, top = s.get("eta_star") or {}, s.get("eta_max") or {}
    pairs = sorted(
        (float(g), e / top[g]) for g, e in star.items() if float(g) >= 1 and e and top.get(g)
    )
    if not pairs:
        return None
    text = "η*/η_max by γ ≥ 1: " + ", ".join(f"{g:.3g}: {r:.2g}" for g, r in pairs)
    head, tail = np.median([r for _, r in pairs[: len(pairs) // 2]]), pairs[-1][1]
    if tail > 1.5 * head:
        text += (
            f" (rises from {head:.2g} to {tail:.2g} at the largest γ: η* drifts toward the "
            "stability edge there, which steepens its slope beyond η_max's; under a fixed step "
            "budget the longest plateaus favour the largest stable η: rerun with more --steps "
            "to see whether the rise persists)"
        )
    return text


def _plateau_note(collapse: dict, L: int, m: evidence.Measured) -> str:
    """Claim 4's note: where the measured slope sits on the toy's curve of slopes against its
    initial weight a0 (a0 = 1 is the theory value; smaller a0 moves toward the asymptote)."""
    text = "a curve that never reaches the level leaves its seed unmeasured"
    gammas = np.asarray(collapse.get("gammas", []), float)
    if gammas.size < 2 or m.value is None:
        return text
    asym = "→ 0 like 1/ln γ" if L == 2 else f"→ 1 − 2/L = {1 - 2 / L:.3g}"
    text += f"; the toy's slope over these γ falls as a0 falls ({asym})"
    bounds = {"value": m.value, "lo": m.lo, "hi": m.hi}
    found = {k: toy_matching_a0(gammas, L, v) for k, v in bounds.items() if v is not None}
    if found.get("value") is None:
        return text + "; no a0 in [0.001, 1] gives the measured slope"
    pw = {k: a**L for k, a in found.items() if a is not None}
    span = f" [{pw['lo']:.2g}, {pw['hi']:.2g}]" if "lo" in pw and "hi" in pw else ""
    return text + (
        f"; the measured slope is the toy's at a0^L = {pw['value']:.2g}{span} instead of 1, i.e. "
        f"the network's plateaus grow as the toy's do at a γ about {1 / pw['value']:.0f}× larger"
    )


def _unaligned(collapse: dict) -> str:
    """Which rich γ never reach the alignment level at η0 ∝ γ^(2/L) (each leaves its seed's
    gap undefined): a plateau longer than the run."""
    rows = collapse.get("align_step", [])
    out = [
        f"γ = {g:g} in {n} of {len(row)} seeds"
        for g, row in zip(collapse.get("gammas", []), rows, strict=False)
        if (n := sum(v is None or not np.isfinite(v) for v in row))
    ]
    if not out:
        return ""
    return (
        "; at η0 ∝ γ^(2/L) never at 0.9× the initial loss within the run (a plateau longer "
        "than the budget): " + ", ".join(out)
    )


def _fmt(v) -> str:
    return ", ".join("—" if x is None or not np.isfinite(x) else f"{x:.3g}" for x in v)
