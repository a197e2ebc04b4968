"""Plot helpers shared by the studies (matplotlib, Agg backend, PNG files written atomically)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lazyrich.results import atomic_write_bytes  # noqa: E402


def save(fig, path: Path) -> None:
    """Save `fig` as PNG at `path` (atomically) and close it."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())


def figure(width: float = 6.0, height: float = 4.2):
    return plt.subplots(figsize=(width, height))


def log_heatmap(ax, x, y, z, *, mask=None, label="", cmap="viridis"):
    """`z[i, j]` over log-spaced `x[i]` (horizontal) and `y[j]` (vertical), log10 colour scale.

    Cells where `mask` is True are drawn as grey with a cross (e.g. diverged runs).
    """
    lx, ly = np.log10(np.asarray(x)), np.log10(np.asarray(y))
    lz = np.log10(np.clip(np.asarray(z, float), 1e-300, None)).T
    if mask is not None:
        lz = np.where(np.asarray(mask).T, np.nan, lz)
    finite = lz[np.isfinite(lz)]
    vmin, vmax = np.percentile(finite, [2, 98]) if finite.size else (0, 1)
    mesh = ax.pcolormesh(
        _edges(lx), _edges(ly), lz, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat"
    )
    ax.figure.colorbar(mesh, ax=ax, label=f"log10 {label}")
    if mask is not None:
        gi, ej = np.nonzero(np.asarray(mask))
        ax.scatter(lx[gi], ly[ej], marker="x", color="0.45", s=14, lw=0.8, label="diverged")
    ax.set_facecolor("0.85")
    return mesh


def _edges(c: np.ndarray) -> np.ndarray:
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])
