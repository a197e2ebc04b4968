"""docs/tutorial.md runs: every ```python block, in order, in one namespace.

The page is a notebook on the reader's own `eqx.nn.MLP`; a block that stops working fails
here. Matplotlib uses the Agg backend and the figures are written in a temporary directory.
Beyond running, the page's own printed claims are checked against the namespace it leaves.
"""

import re
from pathlib import Path

import matplotlib
import numpy as np

PAGE = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a Markdown page, in order."""
    return BLOCK.findall(text)


def test_python_blocks_are_extracted_in_order():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x + 1\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x + 1\n"]


def test_tutorial_runs(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 7, "the tutorial lost its code blocks"
    ns: dict = {"__name__": "tutorial"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{PAGE.name}[block {i}]", "exec"), ns)  # noqa: S102
    assert (tmp_path / "sweep.png").stat().st_size > 0
    # what the page says in prose holds for what it ran
    assert ns["gap"] < 0.5  # the finite-width NTK is near its infinite-width twin
    loss = ns["sweep"].train_loss_full.values
    assert (loss[..., -1] < loss[..., 0]).all()  # every run of the sweep learns
    assert ns["row"]["verdict"] == "agrees" and ns["row"]["measured"]["n"] == 5
    lazy = ns["lazy"].isel(gamma=0)
    for kind in ("train", "test"):  # γ = 1e-3: the network is its linearization
        np.testing.assert_allclose(lazy[f"{kind}_loss"], lazy[f"empirical_{kind}_loss"], rtol=0.01)
    assert float(ns["residual"]) < 1e-3 and float(ns["rev_residual"]) < 1e-3
    assert float(ns["mi"](ns["f"], ns["task"].y_test)) > 0.5


def test_home_page_example_runs(monkeypatch, tmp_path):
    """The docs' home page example (the README's functional-API example) runs as shown."""
    monkeypatch.chdir(tmp_path)
    page = PAGE.parent / "index.md"
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    assert blocks, "the home page lost its example"
    ns: dict = {"__name__": "home"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page.name}[block {i}]", "exec"), ns)  # noqa: S102
    loss = ns["ds"].train_loss_full.values.ravel()
    assert loss[-1] < loss[0]
