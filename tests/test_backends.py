"""Every Keras backend: the same weights files, the same numbers, and the scripts' --backend.

Keras picks its backend once per process, from KERAS_BACKEND, so every other
backend runs in a subprocess. The files are written on the backend this test
session runs on and read on all the others: CI runs the core tests once per
backend, so each backend's files are read by every other backend. The
scripts' `--backend` runs in a subprocess whatever the session's backend,
so those tests are not core: the TensorFlow session runs them.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from vae import cli
from vae.models import build_cnn_vae, build_mlp_vae
from vae.weights import save_model, save_weights

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
THIS = keras.backend.backend()
OTHERS = [
    name for name in cli.BACKENDS if name != THIS and importlib.util.find_spec(name) is not None
]
needs_another_backend = pytest.mark.skipif(
    not OTHERS,
    reason=f"only the {THIS} backend is installed: pip install jax or torch to test the others",
)

BUILDERS = {"mlp": build_mlp_vae, "cnn": build_cnn_vae}
INPUT_SHAPES = {"mlp": (784,), "cnn": (28, 28, 1)}
OUTPUTS = ("z_mean", "z_log_var", "decoded")
SMALL = ["--train-samples", "300", "--test-samples", "300", "--batch-size", "100"]


def _env(backend):
    return dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")


def _outputs(encoder, decoder, x, z):
    z_mean, z_log_var, _ = encoder(x, training=False)
    decoded = decoder(z, training=False)
    return [keras.ops.convert_to_numpy(t) for t in (z_mean, z_log_var, decoded)]


@pytest.mark.core
@needs_another_backend
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_files_saved_here_give_the_same_outputs_on_every_other_backend(kind, mnist_flat, tmp_path):
    (x_train, _), (x_test, _) = mnist_flat
    x_train = x_train[:512].reshape(-1, *INPUT_SHAPES[kind])
    x = x_test[:32].reshape(-1, *INPUT_SHAPES[kind])
    z = 2 * np.random.default_rng(0).standard_normal((32, 2)).astype("float32")
    encoder, decoder, vae = BUILDERS[kind](seed=0)
    vae.compile(optimizer="adam")
    vae.fit(x_train, epochs=1, batch_size=128, verbose=0)  # trained weights, not initial ones
    save_weights(vae, tmp_path / "vae.h5")
    save_model(vae, tmp_path / "vae.keras")
    np.savez(tmp_path / "inputs.npz", x=x, z=z)
    expected = _outputs(encoder, decoder, x, z)

    runs = {}
    for backend in OTHERS:  # side by side: each process spends most of its time starting up
        out = tmp_path / f"{backend}.npz"
        command = [
            sys.executable,
            str(HERE / "backend_outputs.py"),
            kind,
            str(tmp_path / "vae.h5"),
            str(tmp_path / "vae.keras"),
            str(tmp_path / "inputs.npz"),
            str(out),
        ]
        runs[backend] = (
            out,
            subprocess.Popen(
                command,
                env=_env(backend),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    for backend, (out, process) in runs.items():
        log, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"{backend}:\n{log[-3000:]}"
        with np.load(out) as got:
            assert str(got["backend"]) == backend
            for source in ("weights", "model"):
                for name, value in zip(OUTPUTS, expected):
                    # float32 kernels of different libraries: equal up to rounding.
                    np.testing.assert_allclose(
                        got[f"{source}_{name}"],
                        value,
                        rtol=1e-4,
                        atol=1e-5,
                        err_msg=f"{name}, saved on {THIS}, loaded from the {source} file on {backend}",
                    )


def _run(script, *args, backend, cwd, record=None):
    """Runs an example in a fresh process with KERAS_BACKEND=backend; `record` as in
    tests/script_outputs.py: a file for its model's outputs on fixed inputs."""
    command = [str(EXAMPLES / script), *args]
    if record is not None:
        command = [str(HERE / "script_outputs.py"), str(record), *command]
    completed = subprocess.run(
        [sys.executable, *command],
        cwd=cwd,
        env=_env(backend),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@needs_another_backend
def test_backend_flag_overrides_the_environment_and_the_weights_cross_over(mnist_path, tmp_path):
    other = OTHERS[0]
    data = ["--data", str(mnist_path), *SMALL]
    trained = _run(
        "vae_mlp.py",
        "--backend",
        other,
        "--epochs",
        "1",
        "--out",
        "a",
        *data,
        backend=THIS,
        cwd=tmp_path,
        record=tmp_path / "a.npz",
    )
    assert f"on the {other} backend" in trained
    weights = tmp_path / "a" / "vae_mlp_mnist.h5"
    reloaded = _run(
        "vae_mlp.py",
        "--backend",
        THIS,
        "-w",
        str(weights),
        "--out",
        "b",
        *data,
        backend=other,
        cwd=tmp_path,
        record=tmp_path / "b.npz",
    )
    assert f"on the {THIS} backend" in reloaded and "training skipped" in reloaded
    # The model trained on one backend and the one that loaded its file on
    # another: the same z_mean, z_log_var and digits on the same inputs.
    with np.load(tmp_path / "b.npz") as got, np.load(tmp_path / "a.npz") as expected:
        assert (str(expected["backend"]), str(got["backend"])) == (other, THIS)
        for name in ("x", "z"):
            np.testing.assert_array_equal(got[name], expected[name], err_msg=f"inputs {name}")
        for name in OUTPUTS:
            # float32 kernels of different libraries: equal up to rounding.
            np.testing.assert_allclose(
                got[name],
                expected[name],
                rtol=1e-4,
                atol=1e-5,
                err_msg=f"{name}, trained on {other}, reloaded by the script on {THIS}",
            )


@pytest.mark.core
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_missing_backend_package_is_one_line_naming_the_extra(backend, tmp_path):
    script = str(EXAMPLES / "vae_mlp.py")
    # The real script, in a process where the package cannot be imported.
    code = (
        f"import runpy, sys; sys.modules[{backend!r}] = None; "
        f"sys.argv = [{script!r}, '--backend', {backend!r}]; "
        f"runpy.run_path({script!r}, run_name='__main__')"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(THIS),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr == (
        f"vae_mlp.py: error: --backend {backend}: the {backend} package is not installed; "
        f"pip install {backend}, or choose another backend\n"
    )


@pytest.mark.core
def test_backend_flag_after_keras_was_imported(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", THIS)  # restored after the test: parse_args sets it
    args = cli.parse_args(
        "vae_mlp", "", 1, "adam", argv=["--backend", THIS, "--out", str(tmp_path)]
    )
    assert args.backend == THIS and os.environ["KERAS_BACKEND"] == THIS
    other = next(name for name in cli.BACKENDS if name != THIS)
    with pytest.raises(SystemExit) as exit:
        cli.parse_args("vae_mlp", "", 1, "adam", argv=["--backend", other, "--out", str(tmp_path)])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        f"vae_mlp.py: error: --backend {other}: Keras was already imported with the {THIS} "
        f"backend in this process; set KERAS_BACKEND={other} before anything imports Keras, "
        "or run the script in a fresh process\n"
    )
    assert os.environ["KERAS_BACKEND"] == THIS


@needs_another_backend
def test_evaluate_takes_the_backend_flag(mnist_path, tmp_path):
    _, _, vae = build_mlp_vae()
    save_weights(vae, tmp_path / "vae_mlp_mnist.h5")
    other = OTHERS[-1]
    out = _run(
        "evaluate.py",
        "-w",
        "vae_mlp_mnist.h5",
        "--model",
        "mlp",
        "--backend",
        other,
        "--k",
        "2",
        "--test-samples",
        "50",
        "--data",
        str(mnist_path),
        backend=THIS,
        cwd=tmp_path,
    )
    assert f"50 test digits, binarized by one fixed Bernoulli draw; {other} backend" in out
    assert "NLL (importance sampled, k=2)" in out
