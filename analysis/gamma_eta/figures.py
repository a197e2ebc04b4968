"""Figures of the γ–η study: one panel per case (task, loss, architecture, depth)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _plots

plt = _plots.plt


def _panels(n: int, width: float = 5.2, height: float = 4.0):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _theory_lines(ax, gammas, anchor_lo, anchor_hi, depth, *, sign=1.0):
    """Slope 2 (lazy, drawn over γ <= 1) through the first anchor and 2/L (rich, over γ >= 1)
    through the last one, in log10 axes (slopes times `sign`, −1 for the sharpness). L counts
    weight layers (the authors' convention); no 2/(L − 1) line is drawn: nothing in the theory
    or the authors' code counts hidden layers."""
    lg = np.log10(gammas)
    rich = lg[lg >= 0]
    for slope, (g0, v0), x, style, label in (
        (2.0 * sign, anchor_lo, lg[lg <= 0], ":", "theory slope ±2"),
        (
            2.0 / depth * sign,
            anchor_hi,
            rich,
            ":",
            f"theory ±2/L = ±{2 / depth:.2g} (L = {depth} weight layers)",
        ),
    ):
        if g0 is None or not np.isfinite(v0) or x.size < 2:
            continue
        colour = "k" if style == ":" else "0.45"
        ax.plot(
            x, np.log10(v0) + slope * (x - np.log10(g0)), style, color=colour, lw=1.2, label=label
        )


def _anchors(gammas, values):
    ok = np.nonzero(np.isfinite(values))[0]
    if ok.size == 0:
        return (None, np.nan), (None, np.nan)
    return (gammas[ok[0]], values[ok[0]]), (gammas[ok[-1]], values[ok[-1]])


def heatmaps(cases: list[dict[str, Any]], path) -> None:
    fig, axes = _panels(len(cases))
    for ax, c in zip(axes, cases, strict=True):
        g = c["gammas"]
        _plots.log_heatmap(
            ax, g, c["lattice"], c["lattice_loss"], mask=c["lattice_diverged"], label="final loss"
        )
        lg = np.log10(g)
        ax.plot(lg, np.log10(c["eta_star"]), "w-o", ms=4, label="η*")
        ax.plot(lg, np.log10(c["eta_max"]), "r--", lw=1.2, label="η_max")
        _theory_lines(ax, g, *_anchors(g, c["eta_max"]), c["depth"])
        ax.set(xlabel="log10 γ", ylabel="log10 η0", title=c["label"])
        ax.legend(loc="lower right", fontsize=7)
    _plots.save(fig, path)


def loss_curves(cases: list[dict[str, Any]], path) -> None:
    fig, axes = _panels(len(cases))
    cmap = plt.get_cmap("plasma")
    for ax, c in zip(axes, cases, strict=True):
        g = c["gammas"]
        picks = np.unique(np.linspace(0, len(g) - 1, 6).round().astype(int))
        for n, i in enumerate(picks):
            curve = c["curve_at_star"][i]
            if not np.isfinite(curve).any():
                continue
            ax.loglog(
                c["steps"],
                curve,
                color=cmap(n / max(len(picks) - 1, 1)),
                label=f"γ={g[i]:.2g}, η*={c['eta_star'][i]:.2g}",
            )
        ax.set(xlabel="step", ylabel="test loss", title=f"at η*(γ): {c['label']}")
        ax.legend(fontsize=7)
    _plots.save(fig, path)


def eta_fits(cases: list[dict[str, Any]], path) -> None:
    fig, axes = _panels(len(cases))
    for ax, c in zip(axes, cases, strict=True):
        g = c["gammas"]
        for key, colour in (("eta_star", "C0"), ("eta_max", "C3")):
            ax.loglog(g, c[key], "o", color=colour, label=key.replace("eta_", "η_"))
            fit = c["fits"].get(key)
            if fit is not None:
                dense = np.logspace(np.log10(g[0]), np.log10(g[-1]), 100)
                mid, lo, hi = (np.asarray(v) for v in fit.band(dense))
                ax.loglog(dense, mid, "-", color=colour, lw=1)
                ax.fill_between(dense, lo, hi, color=colour, alpha=0.2, lw=0)
        ax.set(xlabel="γ", ylabel="η0", title=f"broken power law, 90% band: {c['label']}")
        ax.legend(fontsize=7)
    _plots.save(fig, path)


def sharpness(cases: list[dict[str, Any]], path) -> None:
    fig, axes = _panels(len(cases))
    for ax, c in zip(axes, cases, strict=True):
        g, s = c["sharp_gammas"], c["sharpness"]
        if g.size == 0:
            ax.set_title(f"no stable η*: {c['label']}")
            continue
        ax.plot(np.log10(g), np.log10(s[:, 0]), "s-", color="0.5", label="at init")
        ax.plot(np.log10(g), np.log10(s[:, -1]), "o-", color="C2", label="end of training")
        _theory_lines(ax, g, *_anchors(g, s[:, -1]), c["depth"], sign=-1.0)
        ax.set(xlabel="log10 γ", ylabel="log10 top Hessian eigenvalue", title=c["label"])
        ax.legend(fontsize=7)
    _plots.save(fig, path)


def ultra_rich(cases: list[dict[str, Any]], path) -> None:
    fig, axes = plt.subplots(len(cases), 2, figsize=(10.4, 3.8 * len(cases)), squeeze=False)
    for (raw, res), c in zip(axes, cases, strict=True):
        rich = c["rich"]
        for n, (gamma, eta, curve) in enumerate(rich["curves"]):
            colour = f"C{n}"
            raw.loglog(c["steps"], curve, color=colour, label=f"γ={gamma:.3g}, η0={eta:.2g}")
            res.loglog(rich["tau"][n], curve, color=colour)
            for drop in rich["drops"][n]:
                raw.axvspan(drop["start"], drop["end"], color=colour, alpha=0.08)
        raw.set(xlabel="step t", ylabel="test loss", title=f"raw: {c['label']}")
        res.set(
            xlabel="τ = η0 γ^(−2/L) t",
            title=f"rescaled; collapse {rich['score']}, raw {rich['score_raw']}",
        )
        raw.legend(fontsize=7)
    _plots.save(fig, path)


def toy(curves: dict[int, dict], path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.4, 4.0))
    for n, (L, cv) in enumerate(sorted(curves.items())):
        em, pl = cv["eta_max"], cv["plateau"]
        a.loglog(em["gamma"], em["predicted"], "-", color=f"C{n}", label=f"L={L} theory")
        a.loglog(em["gamma"], em["simulated"], "o", color=f"C{n}", ms=4, label=f"L={L} GD")
        b.loglog(pl["gamma"], pl["predicted"], "-", color=f"C{n}", label=f"L={L} flow")
        b.loglog(pl["gamma"], pl["simulated"], "o", color=f"C{n}", ms=4, label=f"L={L} GD")
    a.set(xlabel="γ", ylabel="η_max", title="deep-linear toy: largest stable η")
    b.set(xlabel="γ", ylabel="steps to f = y/2 at η = 0.02 η_max", title="plateau length")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    _plots.save(fig, path)


def collapse(cases: list[dict[str, Any]], path) -> None:
    """Per case, the seed-mean rich curves of the three η0 schedules against t − t_a."""
    from . import collapse as col

    have = [c for c in cases if c.get("collapse") is not None]
    fig, axes = _panels(max(1, len(have)))
    styles = {"2/L": "-", "1": "--", "0": ":"}
    cmap = plt.get_cmap("viridis")
    for ax, c in zip(axes, have, strict=False):
        cl = c["collapse"]
        steps = np.asarray(c["steps"], float)
        loss0 = c["summary"]["initial_loss"]
        n = len(cl["gammas"])
        for k, name in enumerate(col.SCHEDULES):
            for i, g in enumerate(cl["gammas"]):
                curve = cl["curves"][i, k]
                ta = col.align_step(steps, curve, loss0)
                if not np.isfinite(ta):
                    continue
                keep = steps > ta
                ax.plot(
                    steps[keep] - ta, curve[keep], styles[name], color=cmap(i / max(1, n - 1)),
                    label=f"γ={g:.3g}, η0∝γ^{name}" if k == 0 or i == 0 else None,
                )  # fmt: skip
        ax.set(xscale="symlog", yscale="log", xlabel="t − t_a (steps after 0.9× loss0)")
        ax.set(ylabel="test loss", title=f"{c['label']}: η0 ∝ γ^(2/L) —, γ --, const ··")
        ax.legend(fontsize=6)
    _plots.save(fig, path)
