"""examples/score.py, run as a user runs it, on models the training scripts wrote."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN = ["--epochs", "1", "--train-samples", "3000", "--test-samples", "100"]


def run(script, *args, cwd, status=0):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert completed.returncode == status, completed.stderr[-3000:]
    return completed


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def models(tmp_path_factory, mnist_path):
    """Two MLP VAEs from vae_mlp.py: one on dynamically binarized digits, one on grey levels."""
    folder = tmp_path_factory.mktemp("models")
    run(
        "vae_mlp.py",
        *TRAIN,
        "--data",
        str(mnist_path),
        "--binarize",
        "dynamic",
        "--out",
        "binary",
        cwd=folder,
    )
    run("vae_mlp.py", *TRAIN, "--data", str(mnist_path), "--out", "grey", cwd=folder)
    return folder / "binary" / "vae_mlp_mnist.h5", folder / "grey" / "vae_mlp_mnist.h5"


@pytest.fixture(scope="module")
def digits(mnist_flat):
    (_, _), (x_test, _) = mnist_flat
    return x_test[:60].reshape(-1, 28, 28)


def write_pngs(folder, images):
    """PNG files in two subfolders, named so that sorted order differs from writing order."""
    paths = []
    for i, image in enumerate(images):
        path = folder / ("b" if i % 2 else "a") / f"{len(images) - i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(path)
        paths.append(path.relative_to(folder).as_posix())
    return sorted(paths)


def test_the_csv_has_one_row_per_file_in_order_with_scores_and_codes(models, digits, tmp_path):
    binary, _ = models
    expected = write_pngs(tmp_path / "mine", digits[:25])
    run(
        "score.py",
        "-w",
        str(binary),
        "--data",
        str(tmp_path / "mine"),
        "--k",
        "20",
        "--out",
        "scored",
        cwd=tmp_path,
    )
    rows = read_csv(tmp_path / "scored" / "scores.csv")
    assert [row["source"] for row in rows] == expected
    assert list(rows[0]) == [
        "source",
        "nll",
        "negative_elbo",
        "reconstruction_error",
        "input_complexity",
        "z_mean_0",
        "z_mean_1",
    ]
    nll = np.array([float(row["nll"]) for row in rows])
    elbo = np.array([float(row["negative_elbo"]) for row in rows])
    # Grey PNGs under a binarized model: binarized as it trained, so a likelihood.
    assert np.all(np.isfinite(nll)) and np.all((50 < nll) & (nll < 600))
    assert np.mean(nll <= elbo + 1.0) > 0.9  # the NLL estimate lies below -ELBO


def test_with_a_reference_every_file_and_the_auroc_recomputed_from_the_csvs(
    models, digits, tmp_path
):
    binary, _ = models
    rng = np.random.default_rng(0)
    noise = rng.random((40, 28, 28)).astype(np.float32)  # out of distribution
    np.savez(tmp_path / "noise.npz", x_train=noise, x_test=noise)
    np.savez(tmp_path / "digits.npz", x_train=digits, x_test=digits)
    out = run(
        "score.py",
        "-w",
        str(binary),
        "--data",
        "noise.npz",
        "--reference",
        "digits.npz",
        "--k",
        "20",
        "--fpr",
        "0.1",
        "--out",
        "ood",
        cwd=tmp_path,
    ).stdout
    folder = tmp_path / "ood"
    for name in (
        "scores.csv",
        "reference_scores.csv",
        "ood.json",
        "histograms.png",
        "roc.png",
        "most_unusual.png",
        "summary.json",
    ):
        assert (folder / name).stat().st_size > 100, name
    metrics = json.loads((folder / "ood.json").read_text())
    data, reference = read_csv(folder / "scores.csv"), read_csv(folder / "reference_scores.csv")
    assert len(data) == 40 and len(reference) == 60
    for name, m in metrics.items():
        values = [float(row[name]) for row in reference + data]
        labels = [0] * len(reference) + [1] * len(data)
        assert m["auroc"] == pytest.approx(roc_auc_score(labels, values))
        assert m["auprc"] == pytest.approx(average_precision_score(labels, values))
    assert metrics["nll"]["auroc"] >= 0.99
    assert "AUROC" in out and "nll" in out
    # --fpr 0.1: about a tenth of the reference above the threshold, by the flag score.
    assert np.mean([int(row["anomalous"]) for row in reference]) == pytest.approx(0.1, abs=0.04)
    assert np.mean([int(row["anomalous"]) for row in data]) > 0.9


def test_a_file_without_a_record_loads_with_model_and_latent_dim(models, digits, tmp_path):
    import h5py

    binary, _ = models
    older = tmp_path / "older.h5"
    with h5py.File(binary) as f, h5py.File(older, "w") as g:  # the record left out
        for key in f:
            f.copy(key, g)
    np.savez(tmp_path / "digits.npz", x_train=digits, x_test=digits)
    failed = run(
        "score.py", "-w", str(older), "--data", "digits.npz", "--out", "a", cwd=tmp_path, status=1
    )
    assert "--model and --latent-dim" in failed.stderr
    run(
        "score.py",
        "-w",
        str(older),
        "--model",
        "mlp",
        "--latent-dim",
        "2",
        "--binarize",
        "dynamic",
        "--data",
        "digits.npz",
        "--k",
        "10",
        "--out",
        "b",
        cwd=tmp_path,
    )
    assert len(read_csv(tmp_path / "b" / "scores.csv")) == 60


def _bad_inputs(tmp_path, digits):
    np.savez(tmp_path / "large.npz", x_train=np.zeros((4, 32, 32)), x_test=np.zeros((4, 32, 32)))
    np.savez(
        tmp_path / "colour.npz", x_train=np.zeros((4, 28, 28, 3)), x_test=np.zeros((4, 28, 28, 3))
    )
    np.savez(tmp_path / "digits.npz", x_train=digits, x_test=digits)
    write_pngs(tmp_path / "one", digits[:1])
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "picture.png")
    with open(tmp_path / "other.h5", "wb") as f:
        import h5py

        with h5py.File(f, "w") as h5:
            h5["something"] = np.zeros(3)


BAD = {
    "images of another size": (
        ["--data", "large.npz"],
        1,
        ["32x32x1", "28x28x1", "--image-size 28 28"],
    ),
    "colour images for a grey model": (["--data", "colour.npz"], 1, ["colour", "grey"]),
    "grey images for an unbinarized Bernoulli model": (
        ["-w", "GREY", "--data", "digits.npz"],
        1,
        ["grey-level", "--binarize dynamic"],
    ),
    "a reference of one image": (
        ["--data", "digits.npz", "--reference", "one"],
        1,
        ["holds 1 image", "at least 2"],
    ),
    "an unknown score": (
        ["--data", "digits.npz", "--scores", "nll,surprise"],
        2,
        ["unknown score 'surprise'", "likelihood_regret"],
    ),
    "a picture as the model": (["-w", "picture.png", "--data", "digits.npz"], 1, ["a PNG image"]),
    "an HDF5 file of something else": (
        ["-w", "other.h5", "--data", "digits.npz"],
        1,
        ["records no model", "--model"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gets_one_line_and_writes_nothing(case, models, digits, tmp_path):
    binary, grey = models
    _bad_inputs(tmp_path, digits)
    args, status, words = BAD[case]
    args = [str(grey) if a == "GREY" else a for a in args]
    if "-w" not in args:
        args = ["-w", str(binary), *args]
    failed = run("score.py", *args, "--k", "10", "--out", "out", cwd=tmp_path, status=status)
    lines = [line for line in failed.stderr.splitlines() if line.startswith("score.py:")]
    assert len(lines) == 1, failed.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
