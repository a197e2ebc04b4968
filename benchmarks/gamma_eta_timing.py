"""Timing of one depth of the γ-η study's paper preset, extrapolated from two short runs.

One depth of `lazyrich run gamma-eta --preset paper` (L = 3, the MLP, 4 tasks × their losses
= 5 cases of 21 γ × ~7 η × 3 seeds × 10,000 steps, plus probes, NUTS fits, sharpness) is too
long for one device session, so this runs the study end to end (`python -m analysis.cli`, a
subprocess each) for one case at two step counts S1 < S2 (both >= the preset's 500 probe
steps, so only the main sweep grows with S), fits `t(S) = a + b·S` and reports

    t_case(full) = a + b · full_steps,    t_depth ≈ cases × t_case(full)   (EXTRAPOLATED)

`a` holds everything that does not grow with S (start-up, compilation, the probe, fits,
sharpness, figures); `b` is the main sweep's seconds per step. The other cases differ (mnist1d
has D = 40, not 784), so `cases ×` one teacher case overestimates the depth: an upper estimate.

    python3 -m benchmarks.gamma_eta_timing                  # GPU: paper preset, L = 3
    uv run python -m benchmarks.gamma_eta_timing --small    # seconds (device-suite smoke)

Prints one line per result and writes benchmarks/results/gamma_eta_timing.json (see `--out`).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ._machine import add_out, result_path, write

SMALL_EXTRA = (  # the quick preset's grid, tiny nets, few steps
    "--width 8 --dim 8 --batch 8 --probe-steps 5 --seeds 1 --records 4 --n-test 32 "
    "--sharpness-batch 16 --sharpness-iters 3 --sharpness-points 1"
)


def run_study(args, steps: int, runs_dir) -> dict:
    """One end-to-end `run gamma-eta` at `steps` steps: wall seconds, exit code, tail of log."""
    cmd = [sys.executable, "-m", "analysis.cli", "run", "gamma-eta", "--preset", args.preset,
           "--depth", str(args.depth), "--arch", args.arch, "--task", args.task,
           "--loss", args.loss, "--steps", str(steps), "--out", str(runs_dir / f"steps{steps}"),
           *shlex.split(args.extra)]  # fmt: skip
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        rc, log = p.returncode, (p.stdout + p.stderr)[-2000:]
    except subprocess.TimeoutExpired:
        rc, log = 124, f"timed out after {args.timeout} s"
    return {"steps": steps, "seconds": time.perf_counter() - t0, "rc": rc, "cmd": cmd, "log": log}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--task", default="teacher")
    ap.add_argument("--loss", default="mse")
    ap.add_argument("--steps", type=int, nargs="+", default=[500, 1000],
                    help="S1 S2 (one value: a single run, no extrapolation)")  # fmt: skip
    ap.add_argument("--full-steps", type=int, default=10_000, help="the preset's --steps")
    ap.add_argument("--cases", type=int, default=5, help="cases in one depth of the preset")
    ap.add_argument("--extra", default="", help="more study options (one quoted string)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per study run")
    ap.add_argument("--runs-dir", default=None, help="study outputs (default: next to the JSON)")
    ap.add_argument("--small", action="store_true", help="quick preset, tiny grid (smoke test)")
    add_out(ap, "gamma_eta_timing")
    args = ap.parse_args(argv)
    if args.small:
        ap.set_defaults(preset="quick", depth=2, steps=[10], full_steps=300, cases=1,
                        extra=SMALL_EXTRA)  # fmt: skip
        args = ap.parse_args(argv)
    json_path = result_path("gamma_eta_timing", args.out)
    runs_dir = Path(args.runs_dir) if args.runs_dir else json_path.parent / "gamma_eta_runs"
    runs = [run_study(args, s, runs_dir) for s in args.steps]
    for r in runs:
        state = "ok" if r["rc"] == 0 else f"FAILED rc={r['rc']}: {r['log'][-300:]}"
        print(f"gamma_eta_timing {args.preset} L={args.depth} {args.task}/{args.loss} "
              f"steps={r['steps']}: {r['seconds']:.1f} s  {state}")  # fmt: skip
    out: dict = {"config": vars(args), "runs": runs, "extrapolated": True}
    if len(runs) == 1:
        out["extrapolated"] = False  # the smoke run: one study run, checked end to end
    elif all(r["rc"] == 0 for r in runs):
        (s1, t1), (s2, t2) = ((r["steps"], r["seconds"]) for r in runs)
        b = (t2 - t1) / (s2 - s1)
        a = t1 - b * s1
        case = a + b * args.full_steps if b > 0 else None
        out |= {"fixed_s": a, "seconds_per_step": b, "case_full_s": case,
                "depth_full_s_upper_estimate": args.cases * case if case else None}  # fmt: skip
        if case is None:
            out["warning"] = "t(S2) <= t(S1): timing noise exceeds the main sweep's cost"
            print(f"gamma_eta_timing: no extrapolation, {out['warning']}")
        else:
            print(f"gamma_eta_timing EXTRAPOLATED: one case at {args.full_steps} steps ≈ "
                  f"{case:.0f} s (fixed {a:.1f} s + {b * 1e3:.2f} ms/step); one depth "
                  f"({args.cases} cases) ≲ {args.cases * case / 60:.1f} min")  # fmt: skip
    write("gamma_eta_timing", out, args.out)
    return out


if __name__ == "__main__":
    sys.exit(0 if all(r["rc"] == 0 for r in main()["runs"]) else 1)
