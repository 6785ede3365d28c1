"""benchmarks/quality.py: Burda's schedule, and a short run's results reproduced by evaluate.py."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
quality = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quality)


def test_burdas_schedule_has_eight_stages_of_3_to_the_i_epochs():
    epochs = quality.schedule_epochs(quality.RUNS["burda_vae_k1"])
    assert epochs == 3280
    stages = [quality.burda_schedule(epoch) for epoch in range(epochs)]
    for i in range(1, 9):
        rates = {rate for stage, rate in stages if stage == i}
        assert len([s for s, _ in stages if s == i]) == 3 ** (i - 1)
        assert len(rates) == 1 and rates.pop() == pytest.approx(1e-3 * 10 ** (-(i - 1) / 7))
    assert stages[0][1] == 1e-3 and stages[-1][1] == pytest.approx(1e-4)


def test_the_fast_runs_shrink_burdas_stages_and_scale_the_rates_with_the_batch():
    run = quality.RUNS["burda_vae_k1_fast"]
    epochs = quality.schedule_epochs(run)
    assert (epochs, run["batch_size"]) == (1800, 128)
    rates = [quality.learning_rate(run, e) for e in range(epochs)]
    lengths = [rates.count(rate) for rate in sorted(set(rates), reverse=True)]
    # Eight stages, each with its share of Burda's 3,280 epochs, to within an epoch.
    assert len(lengths) == 8 and sum(lengths) == epochs
    for i, length in enumerate(lengths):
        assert abs(length - 3**i * epochs / 3280) <= 1, lengths
    assert rates[0] == pytest.approx(1e-3 * (128 / 20) ** 0.5)
    assert rates[-1] == pytest.approx(rates[0] / 10)

    # Cut short: the same stages up to epoch 800, then tenfold down over 300 epochs.
    annealed = quality.RUNS["burda_vae_k1_fast_anneal"]
    assert quality.schedule_epochs(annealed) == 1100
    falling = [quality.learning_rate(annealed, e) for e in range(1100)]
    assert falling[:800] == rates[:800]
    assert all(a > b for a, b in zip(falling[799:], falling[800:]))
    assert falling[-1] == pytest.approx(rates[799] / 10)
    assert falling[949] == pytest.approx(rates[799] / 10**0.5)

    # The rate grown with the batch itself, not its square root: 1e-3 * 128 / 20 at first.
    linear = quality.RUNS["burda_vae_k1_fast_linear"]
    scaled = [quality.learning_rate(linear, e) for e in range(1100)]
    assert scaled == pytest.approx([rate * (128 / 20) ** 0.5 for rate in falling])
    assert scaled[0] == pytest.approx(6.4e-3)

    # _long's shape in 1,500 epochs: the eight stages over 1,200, then the fall.
    short = quality.RUNS["burda_vae_k1_fast_1500"]
    assert quality.schedule_epochs(short) == 1500
    shrunk = [quality.learning_rate(short, e) for e in range(1500)]
    assert len(set(shrunk[:1200])) == 8 and shrunk[1199] == pytest.approx(rates[-1])
    assert shrunk[-1] == pytest.approx(rates[-1] / 10)


def _python(*args, cwd):
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    completed = subprocess.run(
        [sys.executable, *args, "--backend", backend],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    return completed


def test_a_short_run_writes_results_that_evaluate_py_reproduces(mnist_path, tmp_path):
    results, backups = tmp_path / "results", tmp_path / "runs"
    done = _python(
        str(ROOT / "benchmarks" / "quality.py"),
        "burda_vae_k1",
        "--data",
        str(mnist_path),
        "--epochs",
        "2",
        "--train-samples",
        "2000",
        "--test-samples",
        "300",
        "--k",
        "50",
        "--results",
        str(results),
        "--checkpoint-dir",
        str(backups),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((results / "burda_vae_k1.json").read_text())
    assert result["model"].startswith("784-200-200-50 tanh")
    assert (result["k_train"], result["epochs"], result["test_digits"], result["k_eval"]) == (
        1,
        2,
        300,
        50,
    )
    assert result["train_seconds"] > 0 and result["published_nll"] == 86.76
    # The NLL lies below -ELBO: 50 importance samples tighten the bound.
    assert 0 < result["nll"] < -result["elbo"]
    assert (results / "burda_vae_k1.weights.h5").stat().st_size > 1_000_000
    assert not (backups / "burda_vae_k1").exists()  # the backup goes once results are saved

    command = result["evaluate"].split()
    assert command[:2] == ["python", "examples/evaluate.py"]
    evaluated = _python(*command[1:], "--data", str(mnist_path), "--test-samples", "300", cwd=ROOT)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    nll, error = map(
        float,
        re.search(
            r"NLL \(importance sampled, k=50\): ([\d.]+) \+- ([\d.]+)", evaluated.stdout
        ).groups(),
    )
    # Another random 300 digits and other draws: equal within the standard errors.
    assert abs(nll - result["nll"]) < 3 * (error**2 + result["nll_se"] ** 2) ** 0.5


def test_an_unfinished_run_is_resumed_not_overwritten(mnist_path, tmp_path):
    backup = tmp_path / "runs" / "burda_vae_k1"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 7, "batch": 0}))
    done = _python(
        str(ROOT / "benchmarks" / "quality.py"),
        "burda_vae_k1",
        "--data",
        str(mnist_path),
        "--checkpoint-dir",
        str(tmp_path / "runs"),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "holds an unfinished run (7 epochs); add --resume" in done.stderr
