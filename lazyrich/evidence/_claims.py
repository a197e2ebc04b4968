"""Claims declared before any data exist, and the one verdict rule.

A `Claim` states a theory's value (or a threshold), a **margin** — the band of practical
equivalence around it, in the claim's own units, with a one-line reason (half the gap between
competing predictions, or the paper's stated precision; never set from a result) — the unit of
replication and the estimator of its 90% interval.

**The rule** (equivalence logic, one for every claim). Let R be the region the theory allows:

- `kind="equal"`: R = [theory − margin, theory + margin];
- `kind="above"`: R = (theory + margin, ∞): the effect exceeds the threshold by more than the
  margin (a difference within the margin is practically no difference);
- `kind="below"`: R = (−∞, theory − margin).

The claim **agrees** if the interval lies inside R, **disagrees** if it lies entirely outside
R, and is **undecided** otherwise (or without an interval). A precise measurement 2% off a
theory with a margin of 10% agrees; a wide interval never agrees. An undecided row shows the
interval's width against 2 × margin, so a reader sees how many more units would decide it
(the width shrinks as 1/√n).

A claim of a **smoke** run (a quick preset: sized to run in minutes, not to decide) is measured
and shown, but gets the verdict `smoke`, never agree or disagree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from ..errors import ConfigError
from ._intervals import ESTIMATORS, LEVEL, Measured, interval

Kind = Literal["equal", "above", "below"]
KINDS: tuple[str, ...] = ("equal", "above", "below")
VERDICTS: tuple[str, ...] = ("agrees", "disagrees", "undecided", "smoke")
SMOKE_SENTENCE = (
    "smoke: a quick preset, sized to run in minutes, not to decide; "
    "the verdicts are in docs/EVIDENCE.md"
)


@dataclass(frozen=True)
class Claim:
    """A claim, declared before the data: what the theory says and how it will be judged.

    **Fields:**

    - `id`: unique within its study (e.g. `"L3.eta_rich"`).
    - `paper`: the source (authors, year, arXiv id).
    - `claim`: the statement, one sentence.
    - `theory`: the predicted value, or the threshold of an inequality.
    - `margin`: the band of practical equivalence (≥ 0, in the claim's units).
    - `reason`: one line saying why this margin (e.g. "half the gap 2/3 − 1/2 between L = 3 and
      L = 4").
    - `kind`: `"equal"` (default), `"above"` or `"below"` (see the module's rule).
    - `unit`: the unit of replication the interval runs over (default `"seed"`).
    - `estimator`: `"t"` (default), `"bootstrap"` or `"bca"`.
    - `figure`: the figure that shows it (`figures/NAME.png`), or `None`.
    - `resolution`: the grid spacing of a grid-valued measurement (widens the interval), or
      `None`.
    - `theory_text`: how to print the theory (e.g. `"2/L = 0.667"`), or `None`.
    """

    id: str
    paper: str
    claim: str
    theory: float
    margin: float
    reason: str
    kind: Kind = "equal"
    unit: str = "seed"
    estimator: str = "t"
    figure: str | None = None
    resolution: float | None = None
    theory_text: str | None = None

    def __post_init__(self) -> None:
        where = f"claim {self.id!r}"
        for name in ("id", "paper", "claim", "reason", "unit"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"{where}: {name} must be a non-empty string, got {v!r}")
        if not _number(self.theory) or not math.isfinite(self.theory):
            raise ConfigError(f"{where}: theory must be a finite number, got {self.theory!r}")
        if not _number(self.margin) or not (math.isfinite(self.margin) and self.margin >= 0):
            raise ConfigError(f"{where}: margin must be a number >= 0, got {self.margin!r}")
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.estimator not in ESTIMATORS:
            raise ConfigError(
                f"{where}: estimator must be one of {', '.join(ESTIMATORS)}, got {self.estimator!r}"
            )
        if self.resolution is not None and not (_number(self.resolution) and self.resolution > 0):
            raise ConfigError(f"{where}: resolution must be > 0 or None, got {self.resolution!r}")

    @property
    def region(self) -> tuple[float, float]:
        """The region R the theory allows, `(low, high)` (±∞ for one side)."""
        if self.kind == "equal":
            return self.theory - self.margin, self.theory + self.margin
        if self.kind == "above":
            return self.theory + self.margin, math.inf
        return -math.inf, self.theory - self.margin

    @property
    def rule(self) -> str:
        """The verdict rule of this claim, in words."""
        m = f"{self.margin:.3g}"
        t = self.theory_text or f"{self.theory:.4g}"
        lvl = f"{LEVEL:.0%}"
        where = {
            "equal": f"inside {t} ± {m}",
            "above": f"above {t} + {m}",
            "below": f"below {t} − {m}",
        }[self.kind]
        text = f"agrees if the {lvl} {self.estimator} interval over {self.unit}s lies {where}"
        text += "; disagrees if entirely outside; else undecided"
        if self.resolution is not None:
            text += f" (interval widened to ≥ ± {self.resolution:.3g}/2, the grid's spacing)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The claim as plain JSON-ready data (the form a plan stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Claim:
        """A claim from `to_dict`'s form; one-line `ConfigError` on a bad field."""
        if not isinstance(data, dict):
            raise ConfigError(f"a claim must be an object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        extra = set(data) - names
        if extra:
            raise ConfigError(
                f"claim {data.get('id')!r} has unknown field(s) {', '.join(sorted(extra))}"
            )
        try:
            return cls(**data)
        except TypeError as e:
            raise ConfigError(f"claim {data.get('id')!r}: {e}") from None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def verdict(claim: Claim, lo: float | None, hi: float | None) -> str:
    """The one rule: `agrees`, `disagrees` or `undecided` for the interval `[lo, hi]`.

    **Arguments:**

    - `claim`: the claim (its region: theory, margin, kind).
    - `lo`, `hi`: the measured interval's bounds (`None`: no interval).

    **Returns:** `"agrees"` if `[lo, hi]` lies inside the claim's region, `"disagrees"` if it
    lies entirely outside, else `"undecided"`.
    """
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return "undecided"
    r_lo, r_hi = claim.region
    if claim.kind == "equal":  # a closed band
        inside, outside = r_lo <= lo and hi <= r_hi, hi < r_lo or lo > r_hi
    elif claim.kind == "above":  # an open half-line: its boundary is not "above"
        inside, outside = lo > r_lo, hi <= r_lo
    else:
        inside, outside = hi < r_hi, lo >= r_hi
    return "agrees" if inside else "disagrees" if outside else "undecided"


def measure(claim: Claim, samples) -> Measured:
    """The claim's interval from one value per unit.

    **Arguments:**

    - `claim`: gives the estimator and the resolution.
    - `samples`: one value per unit of replication.

    **Returns:** a `Measured`.
    """
    return interval(samples, claim.estimator, resolution=claim.resolution)


def judge(claim: Claim, samples, *, note: str | None = None, smoke: bool = False) -> dict[str, Any]:
    """A claims-table row: the claim, its measurement over `samples` and its verdict.

    **Arguments:**

    - `claim`: the declared claim.
    - `samples`: one value per unit (or a `Measured` already computed by `measure`).
    - `note`: an optional sentence about this measurement (what it means, what would decide it).
    - `smoke`: a quick, non-deciding run: the verdict is `"smoke"`.

    **Returns:** a dict with the claim's fields, `measured: {value, lo, hi, n}`, `samples`,
    `verdict`, `rule` and, for an undecided row, `width_vs_margin` (interval width / 2·margin).
    """
    m = samples if isinstance(samples, Measured) else measure(claim, samples)
    v = "smoke" if smoke else verdict(claim, m.lo, m.hi)
    row: dict[str, Any] = {**claim.to_dict(), "measured": m.as_dict(), "samples": list(m.samples)}
    row["verdict"], row["rule"] = v, claim.rule
    if v == "undecided" and m.width is not None and claim.margin > 0:
        row["width_vs_margin"] = m.width / (2 * claim.margin)
    if note:
        row["note"] = note
    return row


def seeds_to_decide(row: dict[str, Any]) -> int | None:
    """About how many units an undecided `equal` row needs for its interval to fit 2 × margin.

    **Arguments:**

    - `row`: a row from `judge`.

    **Returns:** `ceil(n · (width / 2·margin)²)` (the 1/√n law), or `None` for a decided row,
    an inequality claim, or a row without an interval.
    """
    ratio, n = row.get("width_vs_margin"), (row.get("measured") or {}).get("n")
    if ratio is None or not n or row.get("kind", "equal") != "equal":
        return None
    return math.ceil(n * ratio**2)
