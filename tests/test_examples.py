"""The example scripts, run as a user runs them: in a fresh process."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL = ["--train-samples", "600", "--test-samples", "300", "--batch-size", "100"]


def run(script, *args, cwd, env=None, stderr=False):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg", **(env or {})},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return (completed.stdout, completed.stderr) if stderr else completed.stdout


def final_test_loss(stdout):
    return float(re.search(r"test loss: ([\d.]+)", stdout).group(1))


@pytest.mark.core
@pytest.mark.parametrize("name", ["vae_mlp", "vae_cnn"])
def test_train_then_reload_without_training(name, mnist_path, tmp_path):
    out = run(f"{name}.py", "--epochs", "1", "--data", str(mnist_path), "--out", "results",
              *SMALL, cwd=tmp_path)
    results = tmp_path / "results"
    assert "val_loss" in out and f"Model: \"{name}\"" in out
    expected = [f"{name}_mnist.h5", f"{name}/vae_mean.png", f"{name}/digits_over_latent.png",
                f"{name}/reconstructions.png", f"{name}/interpolation.png"]
    if shutil.which("dot"):  # the diagrams need Graphviz (see the next test)
        expected += [f"{name}_encoder.png", f"{name}_decoder.png", f"{name}.png"]
    for path in expected:
        assert (results / path).stat().st_size > 1000, path
    trained_loss = final_test_loss(out)

    (results / name / "vae_mean.png").unlink()
    reloaded = run(f"{name}.py", "-w", str(results / f"{name}_mnist.h5"), "--data",
                   str(mnist_path), "--out", "again", *SMALL, cwd=tmp_path)
    assert "Epoch" not in reloaded and "training skipped" in reloaded
    assert (tmp_path / "again" / name / "vae_mean.png").exists()
    assert not (tmp_path / "again" / f"{name}_mnist.h5").exists()
    # Same weights, same test digits: the same loss up to the sampling noise of z.
    assert final_test_loss(reloaded) == pytest.approx(trained_loss, rel=0.05)


def test_without_graphviz_a_script_succeeds_with_one_warning_line(mnist_path, tmp_path):
    # PATH without the folders that hold Graphviz's dot, as after a bare `pip install`.
    path = os.pathsep.join(folder for folder in os.environ["PATH"].split(os.pathsep)
                           if not shutil.which("dot", path=folder))
    out, err = run("vae_mlp.py", "--epochs", "1", "--data", str(mnist_path), "--out", "results",
                   *SMALL, cwd=tmp_path, env={"PATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"},
                   stderr=True)
    warnings = [line for line in err.splitlines() if "warning" in line.lower()
                and not line.startswith("WARNING: All log messages before absl")]
    assert len(warnings) == 1, err[-3000:]
    assert warnings[0].startswith("vae_mlp.py: warning: model diagrams skipped: ")
    assert "plot_architecture(" not in err  # no echoed source line
    assert (tmp_path / "results" / "vae_mlp" / "vae_mean.png").exists()
    assert not (tmp_path / "results" / "vae_mlp_encoder.png").exists()


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
    for flag in ["--mse", "--weights", "--epochs", "--batch-size", "--latent-dim", "--data",
                 "--seed", "--out", "--show", "--train-samples", "--test-samples", "--backend"]:
        assert flag in text
    assert "RMSprop" in text


@pytest.mark.parametrize("flag,value", [("--epochs", "-1"), ("--batch-size", "0"),
                                        ("--latent-dim", "zero")])
def test_invalid_flag_values_are_usage_errors(flag, value, tmp_path):
    completed = subprocess.run([sys.executable, str(EXAMPLES / "vae_mlp.py"), flag, value],
                               cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == 2
    assert flag in completed.stderr and "Traceback" not in completed.stderr
