"""The γ–η study's entry point: probe and main sweeps per case (`lazyrich.train.train`),
the read-outs, results.nc, figures and the summary."""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from lazyrich import evidence
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import Grid, default_devices, log_steps

from . import collapse as col
from . import figures as figs
from . import protocol as proto
from .analyse import analyse_case, rich_indices
from .claims import declare, judge_case
from .config import NAME, Config, auto_chunk, case_label, cases_of, validate
from .setup import CNN_DEPTH, initial_loss, make_setup, make_stream, sweep
from .toy import toy_summary


def run(c: Config, store: StudyDir, *, progress: bool = True, devices: int | None = None) -> dict:
    """Run every case, write results.nc and figures into `store`, return the summary."""
    gammas, probe_k = validate(c)
    shard = default_devices(devices)  # every sweep's runs are sharded over these devices
    x64 = {"auto": lambda hp: bool(hp["gamma"] < 1e-2), "always": True, "never": False}[c.float64]
    steps = log_steps(c.steps, c.records)
    probe_steps = min(c.probe_steps, c.steps)
    n_win = proto.window_size(c.window_decades, c.eta_per_decade)
    streams = {}
    results, total_runs, total_steps = [], 0, 0
    # Every process takes its share of the sweeps; the analysis (sharpness replays, fits, toy
    # theory, figures) is done once, by process 0, which alone writes results.
    lead = jax.process_index() == 0
    cases = cases_of(c)
    for ci, (task, loss, arch, depth) in enumerate(cases):
        if task not in streams:
            streams[task] = make_stream(task, c.dim, c.n_test, pool=c.mnist1d_pool)
        stream = streams[task]
        width = (c.cnn_width or c.width) if arch == "cnn" else c.width
        setup = make_setup(
            stream,
            arch=arch,
            width=width,
            depth=depth,
            activation=c.activation,
            batch=c.batch,
            loss=loss,
            threshold=c.threshold,
            bias=c.bias,
        )
        label = case_label(task, loss, arch, depth)
        probe_grid = Grid.of(
            gammas, proto.lattice(c.eta_max, c.eta_per_decade, probe_k), np.arange(c.probe_seeds)
        )
        probe = sweep(
            setup,
            probe_grid,
            [probe_steps],
            chunk_size=auto_chunk(c, gammas, probe_k.size * c.probe_seeds, x64),
            x64=x64,
            store=store,
            devices=shard,
            tag=f"case{ci}-probe",
            progress=progress,
            description=f"{label} probe",
        )
        first, censored = proto.first_stable(probe["diverged"])
        k_win = proto.window_offsets(first, n_win)
        etas = proto.lattice(c.eta_max, c.eta_per_decade, k_win)
        grid = Grid.of(gammas, etas, np.arange(c.seeds))
        main = sweep(
            setup,
            grid,
            steps,
            chunk_size=auto_chunk(c, gammas, n_win * c.seeds, x64),
            x64=x64,
            store=store,
            devices=shard,
            tag=f"case{ci}",
            progress=progress,
            description=label,
        )
        total_runs += probe_grid.num_runs + grid.num_runs
        total_steps += probe_grid.num_runs * probe_steps + grid.num_runs * c.steps
        loss0 = initial_loss(setup, stream.out_dim)
        collapse = None
        ri = rich_indices(gammas, c.rich_gammas, c.gamma_per_decade)
        if c.collapse and len(ri) >= 2:  # every process: the η* read-out is cheap
            marked = proto.divergence_rule(main["diverged"])
            star = proto.eta_star(proto.final_loss(main["test_loss"], steps), marked, etas)[0]
            table = col.eta_table(gammas[ri], star[ri], depth)
            if table is not None:
                cgrid = Grid.of(gammas[ri], table, np.arange(c.seeds))
                cds = sweep(
                    setup, cgrid, steps, chunk_size=cgrid.num_runs, x64=False, store=store,
                    devices=shard, tag=f"case{ci}-collapse", progress=progress,
                    description=f"{label} collapse",
                )  # fmt: skip
                total_runs += cgrid.num_runs
                total_steps += cgrid.num_runs * c.steps
                collapse = col.analyse(steps, gammas[ri], table, cds["test_loss"], loss0, depth)
                collapse["curves"] = cds["test_loss"].mean(2)
        budget = None
        if c.budget_factor:  # the step-budget control: the γ > 1 rows again, longer runs
            b_rows = np.nonzero(gammas > 1)[0]
            b_steps = log_steps(int(round(c.budget_factor * c.steps)), c.records)
            bgrid = Grid.of(gammas[b_rows], etas[b_rows], np.arange(c.seeds))
            b_chunk = auto_chunk(c, gammas[b_rows], n_win * c.seeds, x64)
            bds = sweep(
                setup, bgrid, b_steps, chunk_size=b_chunk, x64=x64, store=store, devices=shard,
                tag=f"case{ci}-budget", progress=progress,
                description=f"{label} budget x{c.budget_factor:g}",
            )  # fmt: skip
            total_runs += bgrid.num_runs
            total_steps += bgrid.num_runs * int(b_steps[-1])
            budget = {"rows": b_rows, "steps": b_steps, "sweep": bds}
        if not lead:
            continue
        fixed = stream.stream.sample(jax.random.key(777), c.sharpness_batch)
        results.append(
            analyse_case(
                c,
                setup,
                label=label,
                arch=arch,
                width=width,
                depth=depth,
                gammas=gammas,
                steps=steps,
                probe_k=probe_k,
                probe=probe,
                censored=censored,
                k_win=k_win,
                etas=etas,
                main=main,
                fixed=fixed,
                loss0=loss0,
                budget=budget,
            )
        )
        results[-1]["collapse"] = collapse

    if not lead:
        return {"runs": int(total_runs), "run_steps": int(total_steps)}
    toy = {d: toy_summary(d) for d in sorted({case[3] for case in cases})}
    write_dataset(store.results_path, _dataset(c, gammas, steps, probe_k, results))
    figs.heatmaps(results, store.figure("loss_heatmap"))
    figs.loss_curves(results, store.figure("loss_curves"))
    figs.eta_fits(results, store.figure("eta_star_fit"))
    figs.sharpness(results, store.figure("sharpness"))
    figs.ultra_rich(results, store.figure("ultra_rich"))
    figs.toy({d: v[1] for d, v in toy.items()}, store.figure("toy_theory"))
    figs.collapse(results, store.figure("collapse"))
    declared = declare(c)
    rows: dict[str, dict] = {}
    for r in results:
        cl = r["collapse"]
        if cl is not None:
            r["summary"]["collapse"] = {k: v for k, v in cl.items() if k != "curves"}
        mine = [d for d in declared if d.id.startswith(r["label"] + " ")]
        rows.update(judge_case(mine, r["label"], r["summary"], cl))
    return {
        "claims": [rows.get(d.id) or evidence.judge(d, [], note="not measured") for d in declared],
        "cases": {r["label"]: r["summary"] for r in results},
        "toy_theory": {f"L={d}": v[0] for d, v in toy.items()},
        "protocol": {
            "eta_star_rule": "lowest seed-mean test loss over the final 10% of steps, among "
            "eta stable for every seed",
            "eta_max_rule": "largest eta stable for every seed after the divergence rule",
            "probe_steps": probe_steps,
            "window_points": n_win,
            "depth_convention": "L = number of weight layers (L − 1 hidden layers), as in the "
            f"authors' code; the CNN has L = {CNN_DEPTH} (conv, conv, fc, readout)",
            "plateau_rule": "a γ whose seed-mean test loss at η* never falls to 0.9× the "
            "initial loss is flagged and left out of the η* and sharpness fits (per seed: the "
            "seed's curve at its own η*, left out of that seed's fits)",
            "per_seed_rule": "the claims' unit is the seed: per seed η* is the η of its lowest "
            "final loss among the η it survived, η_max the largest such η, the sharpness is "
            "replayed at that η*, and a broken power law (least squares) is fitted per seed",
            "staircase_rule": "per seed, the test-loss curve at its own η* at the largest rich "
            "γ; its drops (dynamics.detect_drops) counted, drops separated by less than a "
            "doubling of time merged (dynamics.staircase_steps)",
            "budget_control_rule": (
                f"the γ > 1 rows again at {c.budget_factor:g} × {c.steps} steps, same η windows "
                "and seeds; per seed the least-squares slope of log η* over log γ (γ > 1) of "
                "the control minus that of the main sweep"
                if c.budget_factor
                else "off (--budget-factor 0)"
            ),
            "biases": "zero-initialised, inside each layer's scaling, trained"
            if c.bias
            else "none (--no-bias)",
        },
        "runs": int(total_runs),
        "run_steps": int(total_steps),
    }


def _dataset(c: Config, gammas, steps, probe_k, results) -> xr.Dataset:
    stack = lambda key: np.stack([r["arrays"][key] for r in results])
    c5 = ("case", "gamma", "window", "seed", "step")
    c4, c3 = c5[:4], c5[:3]
    n_sharp = c.sharpness_points + 1
    return xr.Dataset(
        {
            "eta": (c3, stack("eta")),
            "train_loss": (c5, stack("train_loss")),
            "test_loss": (c5, stack("test_loss")),
            "test_accuracy": (c5, stack("test_accuracy")),
            "diverged": (c4, stack("diverged")),
            "diverged_step": (c4, stack("diverged_step")),
            "diverged_marked": (c4, stack("diverged_marked")),
            "final_loss": (c4, stack("final_loss")),
            "eta_star": (("case", "gamma"), stack("eta_star")),
            "eta_max": (("case", "gamma"), stack("eta_max")),
            "eta_max_censored": (("case", "gamma"), stack("censored")),
            "probe_diverged": (
                ("case", "gamma", "probe_eta", "probe_seed"),
                stack("probe_diverged"),
            ),
            "sharpness": (("case", "gamma", "checkpoint"), stack("sharpness")),
            "eta_star_per_seed": (("case", "gamma", "seed"), stack("eta_star_per_seed")),
            "eta_max_per_seed": (("case", "gamma", "seed"), stack("eta_max_per_seed")),
            "sharpness_per_seed": (
                ("case", "gamma", "seed", "checkpoint"),
                stack("sharpness_per_seed"),
            ),
            "sharpness_step": (("checkpoint",), results[0]["arrays"]["sharpness_step"]),
        },
        coords={
            "case": np.arange(len(results)),
            "gamma": gammas,
            "window": np.arange(results[0]["arrays"]["eta"].shape[1]),
            "seed": np.arange(c.seeds),
            "step": steps,
            "probe_eta": proto.lattice(c.eta_max, c.eta_per_decade, probe_k),
            "probe_seed": np.arange(c.probe_seeds),
            "checkpoint": np.arange(n_sharp),
        },
        attrs={
            "study": NAME,
            "cases": "; ".join(r["label"] for r in results),
            "eta_star_rule": "lowest seed-mean test loss over final 10% of steps",
        },
    )
