"""Data-parallel training on this machine's CPU split into two devices.

TensorFlow splits a CPU with `tf.config.set_logical_device_configuration`
before it starts, JAX with `XLA_FLAGS=--xla_force_host_platform_device_count`;
either way the program must start afresh, so every test runs a subprocess.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SPLIT_CPU_FOR_TENSORFLOW = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""

# Trains the MLP VAE on one device, then on both, from the same seed.
ONE_THEN_TWO_DEVICES = """
import json, sys
import keras
from vae import build_mlp_vae, load_mnist
from vae.distribute import data_parallel

(x_train, _), (x_test, _) = load_mnist(sys.argv[1], flatten=True)
x_train, x_test = x_train[:600], x_test[:200]

def train():
    keras.utils.set_random_seed(1)
    _, _, vae = build_mlp_vae(seed=1)
    # Plain SGD, whose steps grow with the gradient (Adam's do not): the sum of
    # the replicas' gradients where their mean was due would show in the losses.
    # Both without XLA on TensorFlow, as its data-parallel training runs (XLA's
    # random draws and roundings differ from TensorFlow's own kernels).
    vae.compile(optimizer=keras.optimizers.SGD(5e-3),
                jit_compile=False if keras.config.backend() == "tensorflow" else "auto")
    history = vae.fit(x_train, epochs=3, batch_size=100, validation_data=(x_test, None),
                      verbose=0)
    return vae, history.history

_, one_device = train()
devices = data_parallel()
vae, two_devices = train()
print(json.dumps({"devices": devices, "one": one_device, "two": two_devices, **placement(vae)}))
"""

TENSORFLOW_PLACEMENT = """
def placement(vae):
    kernel = vae.trainable_variables[0].value  # a MirroredVariable: a copy on each device
    return {"replicas": tf.distribute.get_strategy().num_replicas_in_sync,
            "copies": sorted(copy.device for copy in kernel.values)}
"""

JAX_PLACEMENT = """
def placement(vae):
    kernel = vae.trainable_variables[0].value  # a jax.Array laid out over the mesh
    return {"replicas": int(keras.distribution.distribution().device_mesh.devices.size),
            "copies": sorted(str(device) for device in kernel.sharding.device_set)}
"""

needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)
needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed"
)


def _env(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if backend == "jax":
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
        ).strip()
    return env


def _run(args, backend, cwd=None):
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(backend),
        cwd=cwd,
    )


def _one_then_two_devices(backend, preamble, mnist_path):
    completed = _run(["-c", preamble + ONE_THEN_TWO_DEVICES, str(mnist_path)], backend)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _same_training(result):
    # Both runs see the same batches and the same noise (Sampling draws it for
    # all the replicas and gives each its slice); only the order of the sums
    # differs (two half-batches, then the replicas' gradients added). That
    # leaves float32 rounding, 1e-7 to 1e-5 relative here; 1e-4 is well
    # below the 2e-3 of different noise and the 2x of a loss scaled wrong.
    one, two = result["one"], result["two"]
    for name in ("loss", "val_loss"):
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, err_msg=name)
    assert one["loss"][-1] < 0.75 * one["loss"][0]  # it trained: from 543 nats


@needs_tensorflow
def test_tensorflow_trains_on_two_devices_with_the_losses_of_one(mnist_path):
    result = _one_then_two_devices(
        "tensorflow", SPLIT_CPU_FOR_TENSORFLOW + TENSORFLOW_PLACEMENT, mnist_path
    )
    assert result["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert result["replicas"] == 2
    assert [device.split("/")[-1] for device in result["copies"]] == [
        "device:CPU:0",
        "device:CPU:1",
    ]
    _same_training(result)


@needs_jax
def test_jax_trains_on_two_devices_with_the_losses_of_one(mnist_path):
    result = _one_then_two_devices("jax", "import jax\n" + JAX_PLACEMENT, mnist_path)
    assert result["devices"] == ["cpu:0", "cpu:1"]
    assert result["replicas"] == 2
    assert len(result["copies"]) == 2
    _same_training(result)


SMALL = ["--epochs", "1", "--batch-size", "100", "--seed", "1"]


@needs_tensorflow
def test_script_says_which_devices_it_trains_on(mnist_path, tmp_path):
    runner = SPLIT_CPU_FOR_TENSORFLOW + (
        "import runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    completed = _run(
        [
            "-c",
            runner,
            str(EXAMPLES / "vae_mlp.py"),
            "--distribute",
            *SMALL,
            "--train-samples",
            "200",
            "--test-samples",
            "100",
            "--data",
            str(mnist_path),
            "--out",
            "out",
        ],
        "tensorflow",
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (
        "data-parallel training on 2 devices (/device:CPU:0, /device:CPU:1): each step "
        "splits the batch of 100 into 50 per device"
    ) in completed.stdout
    assert "test loss:" in completed.stdout


@needs_jax
def test_script_on_jax_evens_out_the_data_and_draws_any_number_of_digits(mnist_path, tmp_path):
    # On JAX every batch of a data-parallel step must split evenly over the
    # devices: 201 training and 101 test digits would leave a last batch of 1.
    completed = _run(
        [
            str(EXAMPLES / "vae_mlp.py"),
            "--distribute",
            *SMALL,
            "--train-samples",
            "201",
            "--test-samples",
            "101",
            "--samples",
            "7",
            "--data",
            str(mnist_path),
            "--out",
            "out",
        ],
        "jax",
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    assert "data-parallel training on 2 devices (cpu:0, cpu:1)" in out
    assert "left out the last 1 of the 201 training digits" in out
    assert "left out the last 1 of the 101 test digits" in out
    # 7 digits from the prior, after training: predictions take any batch.
    assert (tmp_path / "out" / "vae_mlp" / "samples.png").stat().st_size > 1000
    assert "on 100 digits" in out


@needs_jax
def test_batch_that_does_not_split_over_the_devices_is_a_usage_error(tmp_path):
    completed = _run(
        [str(EXAMPLES / "vae_mlp.py"), "--distribute", "--batch-size", "101", "--out", "out"],
        "jax",
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "vae_mlp.py: error: --batch-size 101 does not split evenly over 2 devices; pass a "
        "multiple of 2"
    ]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_backend_refuses_distribute_in_one_line(tmp_path):
    completed = _run(
        [str(EXAMPLES / "vae_mlp.py"), "--distribute", "--out", "out"], "torch", cwd=tmp_path
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "vae_mlp.py: error: --distribute: data-parallel training is not supported on the "
        "torch backend; use the tensorflow or jax backend, e.g. --backend jax"
    ]
