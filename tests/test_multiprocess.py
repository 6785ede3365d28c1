"""Several processes on this machine, over 127.0.0.1, started by `python -m vae.launch`.

Each process is a whole training script, and the reference, one process on
this CPU split into two devices, is one too (test_distribute.py's split on
TensorFlow, XLA's host device count on JAX), so every test runs
subprocesses, each bounded in time.
"""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_distribute import SPLIT_CPU_FOR_TENSORFLOW

ROOT = Path(__file__).resolve().parents[1]
MLP = str(ROOT / "examples" / "vae_mlp.py")
CNN = str(ROOT / "examples" / "vae_cnn.py")

# The TensorBoard logs are read with TensorFlow whatever the backend.
needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)
needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed"
)
BACKENDS = [
    pytest.param("tensorflow", marks=needs_tensorflow),
    pytest.param("jax", marks=[needs_tensorflow, needs_jax]),
]

# Runs a script in a process whose CPU is split into two TensorFlow devices.
ON_TWO_DEVICES = SPLIT_CPU_FOR_TENSORFLOW + (
    "import runpy, sys\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def _env(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "MPLBACKEND": "Agg"}
    env.pop("TF_CONFIG", None)
    env.pop("XLA_FLAGS", None)  # one device per process
    return env


def _flags(mnist_path, epochs=2, train_samples=600):
    return [
        "--distribute",
        "--epochs",
        str(epochs),
        "--batch-size",
        "100",
        "--seed",
        "1",
        "--train-samples",
        str(train_samples),
        "--test-samples",
        "200",
        "--data",
        str(mnist_path),
        "--out",
        "out",
        "--logdir",
        "logs",
    ]


def _launch(backend, args, cwd, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "vae.launch", "-n", "2", *args],
        cwd=cwd,
        env={**_env(backend), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _epoch_losses(logdir):
    """`{"loss": [...], "val_loss": [...]}` per epoch, from the TensorBoard logs."""
    import tensorflow as tf

    losses = {}
    for split, key in (("train", "loss"), ("validation", "val_loss")):
        values = {}
        for path in sorted((logdir / split).glob("events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                for value in event.summary.value:
                    if value.tag == "epoch_loss":
                        values[event.step] = float(tf.make_ndarray(value.tensor))
        losses[key] = [values[step] for step in sorted(values)]
    return losses


def _one_process_on_two_devices(backend, script, mnist_path, cwd):
    if backend == "tensorflow":
        command, env = [sys.executable, "-c", ON_TWO_DEVICES], _env(backend)
    else:
        command = [sys.executable]
        env = {**_env(backend), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    completed = subprocess.run(
        [*command, script, *_flags(mnist_path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "data-parallel training on 2 devices" in completed.stdout


# The MLP on each engine, and the CNN on TensorFlow alone: what several
# processes share (batches, gradients, the chief's files) is the same for
# either model, and on JAX the CNN's 90 s went to compiling it.
@pytest.mark.parametrize(
    "backend, script",
    [
        pytest.param("tensorflow", MLP, marks=needs_tensorflow, id="tensorflow-vae_mlp"),
        pytest.param("tensorflow", CNN, marks=needs_tensorflow, id="tensorflow-vae_cnn"),
        pytest.param("jax", MLP, marks=[needs_tensorflow, needs_jax], id="jax-vae_mlp"),
    ],
)
def test_two_processes_end_with_the_losses_of_one_process_on_two_devices(
    backend, script, mnist_path, tmp_path
):
    name = Path(script).stem
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _one_process_on_two_devices(backend, script, mnist_path, tmp_path / "one")
    completed = _launch(backend, [script, *_flags(mnist_path)], tmp_path / "two")
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-3000:]
    out = completed.stdout
    assert out.startswith(f"launch: 2 {backend} workers on 127.0.0.1, worker 0 pid ")
    # Two processes of one device each: TensorFlow names the workers, JAX
    # the devices (a CPU of each process).
    for worker in (0, 1):
        assert f"[worker {worker}] data-parallel training on 2 devices (" in out
    if backend == "tensorflow":
        assert "on 2 devices (/job:worker/task:0, /job:worker/task:1)" in out
    # Both processes trained as one: the same test loss, printed by each.
    test_losses = {line.split("] ", 1)[1] for line in out.splitlines() if "test loss:" in line}
    assert len(test_losses) == 1, test_losses
    reference = _epoch_losses(tmp_path / "one" / "logs" / name)
    losses = _epoch_losses(tmp_path / "two" / "logs" / name)
    # The same batches, the same draws of z, the gradients added in another
    # order: float32 rounding, far below the 2e-3 of other draws
    # (test_distribute.py).
    for key in ("loss", "val_loss"):
        assert len(losses[key]) == 2
        np.testing.assert_allclose(losses[key], reference[key], rtol=1e-4, err_msg=key)
    assert losses["loss"][-1] < losses["loss"][0]
    # Written once, by the chief (worker 0): the weights and the pictures, and
    # they load into a model with the weights of the one-process run.
    weights = f"{name}_mnist.h5"
    assert sorted(p.name for p in (tmp_path / "two" / "out").glob("*.h5")) == [weights]
    assert f"[worker 0] saved weights to out/{weights}" in out
    assert "[worker 1] saved weights to out/" not in out
    from vae.weights import load_model

    _, _, chief, _ = load_model(tmp_path / "two" / "out" / weights)
    _, _, single, _ = load_model(tmp_path / "one" / "out" / weights)
    for a, b in zip(chief.weights, single.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_worker_ends_the_run_in_one_line_and_resume_completes_it(
    backend, mnist_path, tmp_path
):
    # Epochs of a few seconds, so that the kill lands inside one.
    flags = [*_flags(mnist_path, epochs=3, train_samples=12000), "--checkpoint-dir", "backup"]
    (tmp_path / "out").mkdir()
    old = tmp_path / "out" / "vae_mlp_mnist.h5"
    old.write_bytes(b"the weights of an earlier run")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "vae.launch", "-n", "2", MLP, *flags],
        cwd=tmp_path,
        env={**_env(backend), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        # Worker 1 dies in epoch 2, once epoch 1 is backed up.
        for line in launcher.stdout:
            lines.append(line)
            if line.startswith("[worker 1] Epoch 2/3"):
                break
        assert (tmp_path / "backup" / "vae_mlp").is_dir(), "".join(lines)[-3000:]
        # "launch: 2 {backend} workers on 127.0.0.1, worker 0 pid N, worker 1 pid M"
        worker_1 = int(lines[0].rsplit(" pid ", 1)[1])
        os.kill(worker_1, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert time.monotonic() - killed < 120
    assert launcher.returncode == 128 + signal.SIGKILL
    assert stderr.strip().splitlines()[-1] == (
        "launch: worker 1 was killed by SIGKILL; stopped the other workers"
    )
    # The weights file is whole: the earlier one, untouched.
    assert old.read_bytes() == b"the weights of an earlier run"
    resumed = _launch(backend, [MLP, *flags, "--resume"], tmp_path)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    for worker in (0, 1):
        assert f"[worker {worker}] resuming from backup/vae_mlp: 1 of 3 epochs done" in (
            resumed.stdout
        )
    from vae.weights import load_model

    load_model(old)  # now the new run's, whole
    assert not (tmp_path / "backup" / "vae_mlp").exists()  # removed once the weights were saved
