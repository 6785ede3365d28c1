"""examples/vae_walkthrough.ipynb, run top to bottom in a Jupyter kernel as a reader runs it."""

import html
import json
import math
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "vae_walkthrough.ipynb"


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.fixture(scope="module")
def executed(tmp_path_factory, monkeypatch_module):
    """The notebook executed on the sample bundled with the package, in a fresh folder."""
    from vae.data import SAMPLE_PATH

    # The kernel inherits the environment: the bundled digits (the same in CI
    # as offline), no windows (figures appear as outputs), no C++ start-up chatter.
    monkeypatch_module.setenv("VAE_DATA", str(SAMPLE_PATH))
    monkeypatch_module.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch_module.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    folder = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # One more cell hands the kernel's results back to the test.
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import json; print(json.dumps({'untrained_loss': float(untrained_loss), "
            "'test_loss': float(test_loss), 'nll': nll, 'minus_elbo': minus_elbo, "
            "'samples': samples.shape}))"
        )
    )
    # Any error in a cell raises here, naming the cell.
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    results = json.loads(notebook.cells[-1].outputs[0]["text"])
    return notebook, results, folder


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_training_lowers_the_test_loss(executed):
    _, results, _ = executed
    assert math.isfinite(results["test_loss"]) and math.isfinite(results["untrained_loss"])
    # About 543 nats untrained (every pixel near 1/2); far lower after 10 epochs.
    assert results["test_loss"] < 0.5 * results["untrained_loss"]


def test_importance_sampling_tightens_the_bound(executed):
    _, results, _ = executed
    assert 0 < results["nll"] < results["minus_elbo"] < 1.1 * results["test_loss"]


def test_the_pictures_show_and_are_saved(executed):
    notebook, results, folder = executed
    assert results["samples"] == [50, 784]
    shown = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    # latent means, digit manifold, reconstructions, interpolation, samples
    assert len(shown) == 5
    # The explorer, inline: the page itself in an iframe.
    pages = [
        output["data"]["text/html"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("data", {}).get("text/html", "").startswith("<iframe srcdoc=")
    ]
    assert len(pages) == 1 and 'id="latent"' in html.unescape(pages[0])
    for name in [
        "vae_mean.png",
        "digits_over_latent.png",
        "reconstructions.png",
        "interpolation.png",
        "samples.png",
        "explorer.html",
        "vae_mlp_mnist.h5",
    ]:
        assert (folder / "vae_walkthrough" / name).stat().st_size > 1000, name
