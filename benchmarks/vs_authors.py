"""lazyrich against the authors' own public code, side by side (issue 19).

Nothing of the authors' code is in this repository: point the script at local clones.

- `exact_gn`: one exact Gauss-Newton step of the reversible MLP (PAPERS.md §2) with
  mtkresearch/exact_GN_revNN's `RevMLP` (research/RevMLP/model/reversible_mlp.py, fastbreak
  underneath: `model(x)` then `model.backward(out, y)`, SVD pseudo-inverse at rtol 1e-2, atol
  1e-5, MSE, then `SGD.step`) against `exact_gauss_newton(normalize="none")` on the same
  weights (copied from lazyrich's `RevMLP`) and batch.
- `pbfgs`: ten P-BFGS steps (PAPERS.md §3) with nblt/DLDR's `P_plus_BFGS`, `update_grad` and
  `get_model_grad_vec`, taken from its `train_pbfgs.py` and executed as written except that
  `.cuda()` is removed (its other defaults: ρ = σ = 0.4, alpha = 0, i.e. plain P-BFGS; it
  saves the model to disk each step and reloads it after every trial), against lazyrich's
  `p_bfgs` on the same MLP, P and batches (`benchmarks.vs_pytorch_dldr.pbfgs_case`).

Checks first, in float64: the GN updates (lazyrich's parameter change over −lr × the authors'
`.grad`, relative difference) and the P-BFGS losses and trials per step. Then float32 timing in
rounds of rotated order, the ratio authors/lazyrich within each round, median [min, max], the
authors' code at 1 thread and at every core (`OMP_WAIT_POLICY=PASSIVE`).

fastbreak imports einops and torchvision at module level (for layers and data loaders the GN
step does not use); when they are missing, empty stand-ins are put on the path for the import.

    git clone https://github.com/mtkresearch/exact_GN_revNN /tmp/exact_GN_revNN
    git clone https://github.com/nblt/DLDR /tmp/DLDR
    uv sync --group peers
    uv run python -m benchmarks.vs_authors --gn-repo /tmp/exact_GN_revNN --dldr-repo /tmp/DLDR
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lazyrich.models import RevMLP, functional
from lazyrich.optim import exact_gauss_newton

from ._machine import add_out, write

# vs_pytorch imports PyTorch (with OMP_WAIT_POLICY=PASSIVE set first), or exits with the line
# that says to install the `peers` group
from .vs_pytorch import side_by_side, torch

nn = torch.nn


def _stand_ins(root: Path) -> None:
    """Empty `einops` / `torchvision` modules on the path when the real ones are missing."""
    if importlib.util.find_spec("einops") is None:
        (root / "einops.py").write_text(
            "def rearrange(*a, **k):\n    raise NotImplementedError('einops stand-in')\n"
        )
    if importlib.util.find_spec("torchvision") is None:
        (root / "torchvision").mkdir()
        (root / "torchvision" / "__init__.py").write_text("from . import transforms, datasets\n")
        (root / "torchvision" / "transforms.py").write_text("")
        (root / "torchvision" / "datasets.py").write_text("")
    sys.path.insert(0, str(root))


# ------------------------------------------------------------------------------ exact GN


def gn_case(repo: Path, h: int, batch: int, dtype_name: str, d: int = 784):
    """`(lazyrich_step, authors_step, lazyrich_update, authors_update)` on the same weights."""
    sys.path[:0] = [str(repo), str(repo / "research" / "RevMLP")]
    losses = importlib.import_module("fastbreak")
    authors = importlib.import_module("model.reversible_mlp")
    dt = jnp.float64 if dtype_name == "float64" else jnp.float32
    tdt = torch.float64 if dtype_name == "float64" else torch.float32
    key = jax.random.key(0)
    model = RevMLP(d, num_blocks=2, hidden=h, out_dim=10, sigma=0.03, dtype=dt, key=key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (batch, d), dt)
    labels = jax.random.randint(jax.random.fold_in(key, 2), (batch,), 0, 10)
    y = jax.nn.one_hot(labels, 10, dtype=dt)
    params, _ = functional(model)
    lr = 0.1
    gn = exact_gauss_newton(model, lr, loss="mse", normalize="none")
    state = gn.init(params)

    @jax.jit
    def step(p, state, x, y):
        upd, _ = gn.update(None, state, p, x=x, y=y)  # pyright: ignore[reportArgumentType]
        return optax.apply_updates(p, upd)

    tm = authors.RevMLP(
        d, 2, losses.MSELoss(), hidden_dim=h, output_dim=10, bias=True, non_linearity=True,
        inv_method="default", inv_method_args={"rtol": 1e-2, "atol": 1e-5}, split_dim=-1,
    ).to(tdt)  # fmt: skip

    def t(a):
        return torch.from_numpy(np.array(a)).to(tdt)

    with torch.no_grad():
        for blk, tb in zip(model.blocks, tm.layers.reversible_blocks, strict=True):
            for name, lin in (("f", tb.f_block), ("g", tb.g_block)):
                lin.weight.copy_(t(getattr(blk, f"w_{name}")))
                lin.bias.copy_(t(getattr(blk, f"b_{name}")))
                lin.C.data = t(getattr(blk, f"c_{name}").value).T.contiguous()
        tm.u_proj = t(model.readout.value)
    tx, ty = t(x), t(y)
    opt = torch.optim.SGD(tm.parameters(), lr=lr)
    blocks = tm.layers.reversible_blocks

    def authors_update():
        opt.zero_grad()
        with torch.no_grad():
            tm.backward(tm(tx), ty)
        return [(b.f_block.weight.grad, b.g_block.weight.grad) for b in blocks]

    def authors_step():
        authors_update()
        opt.step()

    def lazyrich_update():
        new = step(params, state, x, y)
        return [
            (a.w_f - b.w_f, a.w_g - b.w_g) for a, b in zip(new.blocks, params.blocks, strict=True)
        ]

    return (lambda: step(params, state, x, y)), authors_step, lazyrich_update, authors_update


def gn_check(repo: Path, h: int, batch: int) -> dict:
    _, _, ours, theirs = gn_case(repo, h, batch, "float64")
    a = np.concatenate([np.asarray(v).ravel() for pair in ours() for v in pair])
    b = np.concatenate([v.numpy().ravel() for pair in theirs() for v in pair])
    rel = float(np.linalg.norm(a + 0.1 * b) / np.linalg.norm(a))  # SGD applies −lr·grad
    print(f"check exact_gn h={h} batch {batch} float64: update vs −lr·grad rel. diff {rel:.2e}")
    return {"update_relative_difference": rel, "h": h, "batch": batch}


# ------------------------------------------------------------------------------ P-BFGS


class _Net(nn.Module):
    """The bias-free ReLU MLP of `pbfgs_case`, parameters in lazyrich's `ravel_pytree` order."""

    def __init__(self, leaves, tdt):
        super().__init__()
        self.ws = nn.ParameterList(
            [nn.Parameter(torch.from_numpy(np.array(a)).to(tdt)) for a in leaves]
        )

    def forward(self, x):
        h = x
        for k, w in enumerate(self.ws):
            h = h @ w.T
            if k < len(self.ws) - 1:
                h = torch.relu(h)
        return h


def _authors_pbfgs(repo: Path) -> dict[str, Any]:
    """The three functions of the authors' `train_pbfgs.py`, `.cuda()` removed."""
    src = (repo / "train_pbfgs.py").read_text()
    want = {"get_model_grad_vec", "update_grad", "P_plus_BFGS"}
    funcs = [n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name in want]
    code = "\n\n".join(ast.get_source_segment(src, f) or "" for f in funcs)
    ns: dict[str, Any] = {"torch": torch, "nn": nn, "np": np}
    exec(compile(code.replace(".cuda()", ""), "train_pbfgs.py", "exec"), ns)  # noqa: S102
    return ns


def pbfgs_case(repo: Path, dtype_name: str, workdir: Path):
    from .vs_pytorch_dldr import pbfgs_case as ours

    a = SimpleNamespace(pbfgs_in=40, pbfgs_width=256, pbfgs_depth=3, pbfgs_batch=256,
                        pbfgs_steps=10, d=40)  # fmt: skip
    tdt = torch.float64 if dtype_name == "float64" else torch.float32
    jax_fn, _, _, parts = ours(a, dtype_name, jax.random.key(0))
    p = torch.from_numpy(np.array(parts["p_mat"])).to(tdt)
    got: dict[str, Any] = parts
    batches: list[Any] = list(zip(got["xs"], got["ys"], strict=True))
    xs = [torch.from_numpy(np.array(v)).to(tdt) for v, _ in batches]
    ys = [torch.from_numpy(np.array(v)).long() for _, v in batches]
    net = _Net(jax.tree.leaves(parts["params"]), tdt)
    init = [w.detach().clone() for w in net.ws]
    ns = _authors_pbfgs(repo)

    def authors_fn():
        with torch.no_grad():
            for w, w0 in zip(net.ws, init, strict=True):
                w.copy_(w0)
        ns.update(
            args=SimpleNamespace(n_components=p.shape[0], arch=str(workdir / "mlp")), P=p,
            rho=0.4, sigma=0.4, Bk=torch.eye(p.shape[0], dtype=tdt), sk=None, gk_last=None,
            grad_res_momentum=0, gamma=0.9, alpha=0.0, search_times=[],
        )  # fmt: skip
        opt = torch.optim.SGD(net.parameters(), lr=1, momentum=0)
        opt.zero_grad()
        losses = []
        for x, y in zip(xs, ys, strict=True):
            loss = nn.CrossEntropyLoss()(net(x), y)
            loss.backward()
            ns["P_plus_BFGS"](net, opt, ns["get_model_grad_vec"](net), loss.item(), x, y)
            opt.zero_grad()
            losses.append(loss.item())
        return losses, list(ns["search_times"])

    return jax_fn, authors_fn, a.pbfgs_steps


def pbfgs_check(repo: Path, workdir: Path) -> dict:
    jax_fn, authors_fn, _ = pbfgs_case(repo, "float64", workdir)
    ours = jax_fn()
    theirs, searches = authors_fn()
    jl = np.array([float(v) for v, _, _ in ours])
    rel = float(np.max(np.abs(jl - np.array(theirs))) / np.max(np.abs(jl)))
    tries = [int(n) for _, _, n in ours]
    same = tries == [m + 1 for m in searches]  # lazyrich counts trials, the authors failures
    print(f"check pbfgs float64: losses rel. diff {rel:.2e}; trials {tries} "
          f"{'equal' if same else 'DIFFER'}")  # fmt: skip
    return {"loss_relative_difference": rel, "trials": tries, "trials_equal": same}


# ------------------------------------------------------------------------------ timing


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="lazyrich against the authors' own code")
    p.add_argument("--gn-repo", type=Path, help="clone of mtkresearch/exact_GN_revNN")
    p.add_argument("--dldr-repo", type=Path, help="clone of nblt/DLDR")
    p.add_argument("--configs", nargs="+", default=["1024:256", "1024:1000", "2048:256",
                                                    "2048:1000"], help="GN h:batch")  # fmt: skip
    p.add_argument("--rounds", type=int, default=5)
    add_out(p, "vs_authors")
    a = p.parse_args(argv)
    if a.gn_repo is None and a.dldr_repo is None:
        p.error("give --gn-repo and/or --dldr-repo (local clones of the authors' repositories)")
    for repo in (a.gn_repo, a.dldr_repo):
        if repo is not None and not repo.is_dir():
            p.error(f"{repo} is not a directory: clone the repository there first")
    threads = sorted({1, os.cpu_count() or 1})
    work = Path(tempfile.mkdtemp(prefix="vs_authors_"))
    _stand_ins(work)
    jax.config.update("jax_enable_x64", True)  # float64 for the checks; timing in float32
    res: dict[str, Any] = {"torch": torch.__version__, "load_start": list(os.getloadavg())}
    if a.gn_repo is not None:
        res["exact_gn_check"] = gn_check(a.gn_repo, 256, 64)
        for cfg in a.configs:
            h, b = (int(v) for v in cfg.split(":"))
            ours, theirs, _, _ = gn_case(a.gn_repo, h, b, "float32")
            res[f"exact_gn_h{h}_b{b}"] = side_by_side(
                ours, theirs, a.rounds, threads, peer="authors"
            )
            print(f"exact_gn h={h} batch {b}: {res[f'exact_gn_h{h}_b{b}']}", flush=True)
    if a.dldr_repo is not None:
        res["pbfgs_check"] = pbfgs_check(a.dldr_repo, work)
        ours, theirs, per = pbfgs_case(a.dldr_repo, "float32", work)
        res["pbfgs_ms_per_step"] = side_by_side(
            ours, theirs, a.rounds, threads, per=per, peer="authors"
        )
        print(f"pbfgs (ms per step): {res['pbfgs_ms_per_step']}", flush=True)
    res["load_end"] = list(os.getloadavg())
    write("vs_authors", res, a.out)
    return res


if __name__ == "__main__":
    main()
