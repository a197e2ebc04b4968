"""The γ–η study's claims (`summary.json["claims"]`, shape in DESIGN.md), decided by rules
fixed here before any run.

- **Slopes** (claims 1–3, per case): the broken-power-law fit's 90% interval of the small-γ
  slope (theory 2, or −2 for the sharpness) and the large-γ slope (2/L, −2/L). `agrees` when the
  theory lies inside the interval and the interval is narrower than `SLOPE_WIDTH`
  (small γ) or `RICH_WIDTH` (large γ); `disagrees` when outside; `undecided` otherwise.
- **Plateau growth** (claim 4): the log-log slope of the escape step over the rich γ at
  η0 ∝ γ^(2/L), a 90% t-interval over seeds, against the toy model's slope (a0 = 1); same rule
  with width `RICH_WIDTH`. The note gives the toy's a0 whose slope equals the measured one.
- **Collapse** (claim 5): per seed the ratio of the aligned gap at η0 ∝ γ^(2/L) to the smaller
  of the gaps with exponent 1 and with one η0 (for L = 2 exponent 1 is 2/L, so only the
  latter); 90% t-interval over seeds; theory "< 1": `agrees` when hi < 1, `disagrees` when
  lo > 1.
- **Best γ** (claim 6): per seed the γ of the lowest final loss; 90% t-interval of log10 γ*
  over seeds; theory "> 0" (γ* > 1): `agrees` when lo > 0, `disagrees` when hi < 0.
A `t`-interval over n seeds is mean ± t(0.95, n − 1)·sd/√n (n = 1: no interval: undecided).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .collapse import toy_matching_a0

PAPER = "Atanasov et al. 2024 (arXiv 2410.04642)"
SLOPE_WIDTH = 1.5
RICH_WIDTH = 0.5
_T95 = {2: 6.314, 3: 2.920, 4: 2.353, 5: 2.132, 6: 2.015, 7: 1.943, 8: 1.895, 9: 1.860}


def t_interval(values) -> dict[str, float | None]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if v.size < 2 or v.size < len(list(values)):
        m = float(v.mean()) if v.size else None
        return {"value": m, "lo": None, "hi": None}
    half = _T95.get(v.size, 1.645) * v.std(ddof=1) / math.sqrt(v.size)
    return {"value": float(v.mean()), "lo": float(v.mean() - half), "hi": float(v.mean() + half)}


def _verdict_point(theory: float, m: dict, width: float) -> str:
    if m["lo"] is None or m["hi"] is None:
        return "undecided"
    if not m["lo"] <= theory <= m["hi"]:
        return "disagrees"
    return "agrees" if m["hi"] - m["lo"] < width else "undecided"


def _verdict_side(m: dict, *, below: float | None = None, above: float | None = None) -> str:
    if m["lo"] is None or m["hi"] is None:
        return "undecided"
    if below is not None:
        return "agrees" if m["hi"] < below else "disagrees" if m["lo"] > below else "undecided"
    assert above is not None
    return "agrees" if m["lo"] > above else "disagrees" if m["hi"] < above else "undecided"


def _fit_measured(fit: Any) -> dict:
    if not isinstance(fit, dict) or "mean" not in fit:
        return {"value": None, "lo": None, "hi": None}
    return {"value": fit["mean"], "lo": fit["lo"], "hi": fit["hi"]}


def _claim(id_, claim, theory, measured, verdict, rule, figure, note=None) -> dict:
    out = {
        "id": id_, "paper": PAPER, "claim": claim, "theory": theory, "measured": measured,
        "verdict": verdict, "rule": rule, "figure": figure,
    }  # fmt: skip
    if note:
        out["note"] = note
    return out


def edge_ratios(s: dict) -> str | None:
    """`η*/η_max` at each γ ≥ 1 (the rich side), and what a drift of it means.

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


def case_claims(label: str, s: dict, collapse: dict | None) -> list[dict]:
    """Claims 1–6 of one case from its summary `s` and its collapse analysis."""
    L = s["depth"]
    rule_pt = "theory inside the fit's 90% interval and the interval narrower than {w}"
    out = []
    flagged = s.get("plateau_flagged_left_out_of_fits", 0)
    left = f"{flagged} γ still on their plateau at η* left out of the fit" if flagged else None
    eta, sh = "eta_star_fit", "sharpness"
    for cid, key, theory, width, fig, what in (
        ("1", "eta_star_slope_small_gamma", 2.0, SLOPE_WIDTH, eta, "η* slope, γ ≪ 1"),
        ("2", "eta_star_slope_large_gamma", 2.0 / L, RICH_WIDTH, eta, "η* slope, γ ≫ 1"),
        ("2b", "eta_max_slope_large_gamma", 2.0 / L, RICH_WIDTH, eta, "η_max slope, γ ≫ 1"),
        ("3a", "sharpness_slope_small_gamma", -2.0, SLOPE_WIDTH, sh, "sharpness at η*, γ ≪ 1"),
        ("3b", "sharpness_slope_large_gamma", -2.0 / L, RICH_WIDTH, sh, "sharpness, γ ≫ 1"),
    ):
        m = _fit_measured(s.get(key))
        note = left if key.startswith(("eta_star", "sharpness")) else None
        ratios = edge_ratios(s)
        if cid in ("2", "3b") and ratios:
            note = f"{note}; {ratios}" if note else ratios
        if m["value"] is None:
            note = f"not measured: {s.get(key)}"
        out.append(
            _claim(
                f"{label} {cid}",
                f"{what} (L = {L} weight layers)",
                round(theory, 4),
                m,
                _verdict_point(theory, m, width),
                rule_pt.format(w=width),
                f"figures/{fig}.png",
                note,
            )  # fmt: skip
        )
    if collapse is not None:
        m = t_interval(collapse["plateau_slope_per_seed"])
        toy = collapse["plateau_slope_toy"]
        out.append(
            _claim(
                f"{label} 4",
                "ultra-rich curves: plateau then drop; the plateau end (0.9× initial loss) "
                "grows with γ at η0 ∝ γ^(2/L), log-log slope vs the deep-linear toy's",
                round(toy, 4),
                m,
                _verdict_point(toy, m, RICH_WIDTH),
                f"toy slope inside the 90% t-interval over seeds, narrower than {RICH_WIDTH}",
                "figures/collapse.png",
                _plateau_note(collapse, L, m),
            )  # fmt: skip
        )
        g = collapse["gap_decades"]
        ratios = [
            a / (min(b, c) if L != 2 else c) if min(b, c) > 0 else math.nan
            for a, b, c in zip(g["2/L"], g["1"], g["0"], strict=True)
        ]
        m = t_interval(ratios)
        note = (
            f"gaps (decades, per seed) 2/L: {_fmt(g['2/L'])}; exponent 1: {_fmt(g['1'])}; "
            f"no rescaling: {_fmt(g['0'])}" + ("; L = 2: exponent 1 is 2/L" if L == 2 else "")
            + _unaligned(collapse)
        )  # fmt: skip
        out.append(
            _claim(
                f"{label} 5",
                "rich curves collapse in τ = η γ^(−2/L) t: aligned gap at η0 ∝ γ^(2/L) over the "
                "smaller gap with η0 ∝ γ or one η0",
                "< 1",
                m,
                _verdict_side(m, below=1.0),
                "90% t-interval over seeds of the ratio below 1: agrees; above 1: disagrees",
                "figures/collapse.png",
                note,
            )  # fmt: skip
        )
    logs = [math.log10(x) for x in s.get("best_gamma_per_seed", [])]
    m = t_interval(logs)
    out.append(
        _claim(
            f"{label} 6",
            "the best online loss is at large γ: log10 γ* > 0",
            "> 0",
            m,
            _verdict_side(m, above=0.0),
            "90% t-interval over seeds of log10 γ* (γ of each seed's lowest final loss) above 0: "
            "agrees; below: disagrees",
            "figures/loss_heatmap.png",
            f"γ* per seed: {_fmt(s.get('best_gamma_per_seed', []))}",
        )  # fmt: skip
    )
    return out


def _plateau_note(collapse: dict, L: int, m: dict) -> str:
    """Claim 4's note: where the measured slope sits on the toy's curve of slopes against its
    initial weight a0 (a0 = 1 is the theory value; smaller a0 moves toward the asymptote)."""
    text = "a curve that never reaches the level leaves its seed undecided"
    gammas = np.asarray(collapse.get("gammas", []), float)
    if gammas.size < 2 or m["value"] is None:
        return text
    asym = "→ 0 like 1/ln γ" if L == 2 else f"→ 1 − 2/L = {1 - 2 / L:.3g}"
    text += f"; the toy's slope over these γ falls as a0 falls ({asym})"
    found = {k: toy_matching_a0(gammas, L, m[k]) for k in ("value", "lo", "hi") if m[k] is not None}
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
