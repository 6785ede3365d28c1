"""The example scripts, run as a user runs them: in a fresh process."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FASHION_DIR

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPT_OUTPUTS = Path(__file__).resolve().parent / "script_outputs.py"
SMALL = ["--train-samples", "600", "--test-samples", "300", "--batch-size", "100"]


def run(script, *args, cwd, env=None, stderr=False, record=None):
    """Runs an example in a fresh process; `record`: a file for what its model computes.

    With `record`, the script runs through tests/script_outputs.py, which
    saves its model's `z_mean`, `z_log_var` and decoded digits on fixed inputs.
    """
    command = [str(EXAMPLES / script), *args]
    if record is not None:
        command = [str(SCRIPT_OUTPUTS), str(record), *command]
    completed = subprocess.run(
        [sys.executable, *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg", **(env or {})},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return (completed.stdout, completed.stderr) if stderr else completed.stdout


def assert_same_model(reloaded, saved):
    """The model that loaded a file computes what the one that saved it did, to float32 rounding.

    Both recorded by `run(..., record=...)` on the same inputs (checked): the
    test digits' `z_mean` and `z_log_var`, and the digits decoded from fixed z.
    """
    with np.load(reloaded) as got, np.load(saved) as expected:
        for name in ("x", "z"):
            np.testing.assert_array_equal(got[name], expected[name], err_msg=f"inputs {name}")
        for name in ("z_mean", "z_log_var", "decoded"):
            np.testing.assert_allclose(
                got[name],
                expected[name],
                rtol=1e-6,
                atol=1e-6,
                err_msg=f"{name} of the reloaded model",
            )


def final_test_loss(stdout):
    return float(re.search(r"test loss: ([\d.]+)", stdout).group(1))


@pytest.mark.core
@pytest.mark.parametrize("name", ["vae_mlp", "vae_cnn"])
def test_train_then_reload_without_training(name, mnist_path, tmp_path):
    out = run(
        f"{name}.py",
        "--epochs",
        "1",
        "--data",
        str(mnist_path),
        "--out",
        "results",
        *SMALL,
        cwd=tmp_path,
        record=tmp_path / "trained.npz",
    )
    results = tmp_path / "results"
    assert "val_loss" in out and f'Model: "{name}"' in out
    expected = [
        f"{name}_mnist.h5",
        f"{name}/vae_mean.png",
        f"{name}/digits_over_latent.png",
        f"{name}/reconstructions.png",
        f"{name}/interpolation.png",
        f"{name}/explorer.html",
    ]
    if shutil.which("dot"):  # the diagrams need Graphviz (see the next test)
        expected += [f"{name}_encoder.png", f"{name}_decoder.png", f"{name}.png"]
    for path in expected:
        assert (results / path).stat().st_size > 1000, path

    (results / name / "vae_mean.png").unlink()
    reloaded = run(
        f"{name}.py",
        "-w",
        str(results / f"{name}_mnist.h5"),
        "--data",
        str(mnist_path),
        "--out",
        "again",
        *SMALL,
        cwd=tmp_path,
        record=tmp_path / "reloaded.npz",
    )
    assert "Epoch" not in reloaded and "training skipped" in reloaded
    assert (tmp_path / "again" / name / "vae_mean.png").exists()
    assert (tmp_path / "again" / name / "explorer.html").stat().st_size > 1000
    assert not (tmp_path / "again" / f"{name}_mnist.h5").exists()
    # Every weight came back, each to its place: the model that saved the file
    # and the one that loaded it encode and decode alike.
    assert_same_model(tmp_path / "reloaded.npz", tmp_path / "trained.npz")


def test_without_graphviz_a_script_succeeds_with_one_warning_line(mnist_path, tmp_path):
    # PATH without the folders that hold Graphviz's dot, as after a bare `pip install`.
    path = os.pathsep.join(
        folder
        for folder in os.environ["PATH"].split(os.pathsep)
        if not shutil.which("dot", path=folder)
    )
    out, err = run(
        "vae_mlp.py",
        "--epochs",
        "1",
        "--data",
        str(mnist_path),
        "--out",
        "results",
        *SMALL,
        cwd=tmp_path,
        env={"PATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stderr=True,
    )
    warnings = [
        line
        for line in err.splitlines()
        if "warning" in line.lower()
        and not line.startswith("WARNING: All log messages before absl")
    ]
    assert len(warnings) == 1, err[-3000:]
    assert warnings[0].startswith("vae_mlp.py: warning: model diagrams skipped: ")
    assert "plot_architecture(" not in err  # no echoed source line
    assert (tmp_path / "results" / "vae_mlp" / "vae_mean.png").exists()
    assert not (tmp_path / "results" / "vae_mlp_encoder.png").exists()


@pytest.mark.parametrize("graphviz", [True, False])
def test_a_bad_weights_file_prints_exactly_one_line_on_stderr(graphviz, mnist_path, tmp_path):
    # A CNN's weights given to the MLP script: the error, and nothing of
    # TensorFlow's start-up or of the diagrams before it.
    run(
        "vae_cnn.py",
        "--epochs",
        "1",
        "--data",
        str(mnist_path),
        "--out",
        "cnn",
        *SMALL,
        cwd=tmp_path,
    )
    path = os.environ["PATH"]
    if not graphviz:
        path = os.pathsep.join(
            folder for folder in path.split(os.pathsep) if not shutil.which("dot", path=folder)
        )
    completed = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "vae_mlp.py"),
            "-w",
            "cnn/vae_cnn_mnist.h5",
            "--data",
            str(mnist_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": path, "MPLBACKEND": "Agg"},
    )
    assert completed.returncode == 1
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(
        "vae_mlp.py: error: weights: cnn/vae_cnn_mnist.h5: these weights do not fit model 'vae_mlp'"
    )


def test_equal_seeds_give_equal_runs_and_mse_is_honoured(mnist_path, tmp_path):
    args = ["--epochs", "2", "--data", str(mnist_path), "--seed", "42", "--mse", *SMALL]
    first = run("vae_mlp.py", *args, "--out", "a", cwd=tmp_path)
    second = run("vae_mlp.py", *args, "--out", "b", cwd=tmp_path)
    # Each epoch's last progress line (the one with val_loss): the bar prints its
    # intermediate updates at steps that depend on timing, not on the seed.
    losses = [re.findall(r"- loss: ([\d.]+)[^\n]*val_loss", out) for out in (first, second)]
    assert len(losses[0]) >= 2 and losses[0] == losses[1]
    assert final_test_loss(first) == final_test_loss(second)
    # Squared error: ~190 untrained (0.5 for mostly-0 pixels), falling; cross-entropy
    # starts at 543 and is still near 400 after two epochs this small.
    assert final_test_loss(first) < 150


def test_help_documents_every_flag(tmp_path):
    text = run("vae_cnn.py", "--help", cwd=tmp_path)
    for flag in [
        "--mse",
        "--weights",
        "--epochs",
        "--batch-size",
        "--latent-dim",
        "--data",
        "--seed",
        "--out",
        "--show",
        "--train-samples",
        "--test-samples",
        "--backend",
    ]:
        assert flag in text
    assert "RMSprop" in text


@pytest.mark.parametrize(
    "flag,value", [("--epochs", "-1"), ("--batch-size", "0"), ("--latent-dim", "zero")]
)
def test_invalid_flag_values_are_usage_errors(flag, value, tmp_path):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "vae_mlp.py"), flag, value],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert flag in completed.stderr and "Traceback" not in completed.stderr


# --------------------------------------------------------------------------
# Other data, beta, the conditional VAE


def _pictures(folder, name):
    return [
        folder / f"{name}/{picture}.png"
        for picture in ("vae_mean", "digits_over_latent", "reconstructions", "interpolation")
    ]


@pytest.fixture(scope="module")
def png_folders(mnist_path, tmp_path_factory):
    """Real digits as PNGs, one subfolder per class: grey 28x28, tinted RGB 28x28, grey 30x30."""
    from PIL import Image

    from vae.data import load_raw_mnist

    (x, y), _ = load_raw_mnist(mnist_path)
    root = tmp_path_factory.mktemp("pngs")
    tints = np.array([[1.0, 0.3, 0.3], [0.3, 1.0, 0.3], [0.3, 0.3, 1.0]])
    for i in range(400):
        grey = Image.fromarray(x[i])
        tinted = Image.fromarray((x[i][..., None] * tints[i % 3]).astype(np.uint8))
        for name, image in [("grey", grey), ("colour", tinted), ("odd", grey.resize((30, 30)))]:
            (root / name / str(y[i])).mkdir(parents=True, exist_ok=True)
            image.save(root / name / str(y[i]) / f"{i:04d}.png")
    return root


@pytest.mark.parametrize(
    "name,folder,epochs", [("vae_mlp", "grey", "2"), ("vae_cnn", "colour", "1")]
)
def test_scripts_train_on_a_folder_of_pngs(name, folder, epochs, png_folders, tmp_path):
    out = run(
        f"{name}.py",
        "--data",
        str(png_folders / folder),
        "--epochs",
        epochs,
        "--batch-size",
        "50",
        "--out",
        "results",
        cwd=tmp_path,
    )
    results = tmp_path / "results"
    assert "on 40 digits" in out  # the seeded 10% held out of 400
    for path in [results / f"{name}_{folder}.h5", *_pictures(results, name)]:
        assert path.stat().st_size > 1000, path
    # The colour digits are drawn in colour, the grey ones in grey.
    from PIL import Image

    with Image.open(results / name / "reconstructions.png") as picture:
        pixels = np.asarray(picture.convert("RGB"), dtype=int)
    colourful = np.abs(pixels[..., 0] - pixels[..., 1]).max() > 100
    assert colourful == (folder == "colour")


def test_the_cnn_asks_for_sides_divisible_by_4(png_folders, tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "vae_cnn.py"),
            "--data",
            str(png_folders / "odd"),
            "--out",
            "results",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert completed.returncode == 1
    lines = [line for line in completed.stderr.splitlines() if line.startswith("vae_cnn.py:")]
    assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert "30x30" in lines[0] and "divisible by 4" in lines[0]
    assert "--image-size 32 32" in lines[0]
    assert not list((tmp_path / "results").glob("*.h5"))


@pytest.mark.skipif(FASHION_DIR is None, reason="needs apt-get install dataset-fashion-mnist")
def test_the_cnn_trains_on_fashion_mnist(tmp_path):
    out = run(
        "vae_cnn.py",
        "--data",
        str(FASHION_DIR),
        "--dataset",
        "fashion_mnist",
        "--epochs",
        "1",
        *SMALL,
        "--out",
        "results",
        cwd=tmp_path,
    )
    results = tmp_path / "results"
    for path in [results / "vae_cnn_fashion_mnist.h5", *_pictures(results, "vae_cnn")]:
        assert path.stat().st_size > 1000, path
    assert "on 300 digits" in out


def test_beta_and_kl_warmup_from_the_command_line(mnist_path, tmp_path):
    out = run(
        "vae_mlp.py",
        "--data",
        str(mnist_path),
        "--beta",
        "4",
        "--kl-warmup",
        "5",
        "--epochs",
        "2",
        *SMALL,
        "--out",
        "results",
        cwd=tmp_path,
    )
    # After 2 of 5 warm-up epochs the weight is 4 * 1/5; the unweighted bound is printed too.
    line = re.search(r"test loss: ([\d.]+) .*reconstruction ([\d.]+) \+ KL ([\d.]+) x 0.8\)", out)
    assert line, out[-2000:]
    loss, reconstruction, kl = map(float, line.groups())
    assert loss == pytest.approx(reconstruction + 0.8 * kl, abs=0.02)
    elbo = float(re.search(r"test negative ELBO \(KL weight 1\): ([\d.]+)", out).group(1))
    assert elbo == pytest.approx(reconstruction + kl, abs=0.02)
    assert re.search(r"kl_weight: 0\.8000", out)  # in the progress bar of epoch 2
    assert (tmp_path / "results" / "vae_mlp_mnist.h5").exists()


def test_conditional_vae_draws_the_digit_asked_for_and_reloads(mnist_path, tmp_path):
    out = run(
        "vae_conditional.py",
        "--data",
        str(mnist_path),
        "--digit",
        "7",
        "--epochs",
        "1",
        *SMALL,
        "--out",
        "results",
        cwd=tmp_path,
        record=tmp_path / "trained.npz",
    )
    results = tmp_path / "results"
    for path in [
        "vae_conditional_mnist.h5",
        "vae_conditional/classes.png",
        "vae_conditional/digit_7.png",
    ]:
        assert (results / path).stat().st_size > 1000, path
    assert "samples of class 7" in out
    reloaded = run(
        "vae_conditional.py",
        "-w",
        str(results / "vae_conditional_mnist.h5"),
        "--data",
        str(mnist_path),
        "--digit",
        "3",
        "--samples",
        "50",
        *SMALL,
        "--out",
        "again",
        cwd=tmp_path,
        record=tmp_path / "reloaded.npz",
    )
    assert "Epoch" not in reloaded and "training skipped" in reloaded
    assert (tmp_path / "again" / "vae_conditional" / "digit_3.png").exists()
    assert_same_model(tmp_path / "reloaded.npz", tmp_path / "trained.npz")


def test_iwae_from_the_command_line(mnist_path, tmp_path):
    out = run(
        "vae_mlp.py",
        "--data",
        str(mnist_path),
        "--k",
        "5",
        "--binarize",
        "dynamic",
        "--latent-dim",
        "10",
        "--epochs",
        "2",
        *SMALL,
        "--out",
        "results",
        cwd=tmp_path,
    )
    bound = final_test_loss(out)
    assert "importance-weighted bound of k = 5 draws" in out
    elbo = float(re.search(r"test negative ELBO: ([\d.]+)", out).group(1))
    assert bound < elbo  # the tighter bound, from the same draws
    assert (tmp_path / "results" / "vae_mlp_mnist.h5").exists()
