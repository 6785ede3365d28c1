"""--logdir: TensorBoard logs of a short training on real digits, read back from the event files."""

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae import cli, workflow
from vae.models import build_mlp_vae

EPOCHS = 3
LOSSES = ["epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss"]


def read_events(folder):
    """`{tag: [(step, value), ...]}` of every summary in the event files of `folder`."""
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, f"no event files in {folder}"
    tags = {}
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append((event.step, value))
    return tags


@pytest.fixture(scope="module")
def run(mnist_path, tmp_path_factory):
    """vae_mlp.py's flow with --logdir: the log folder, the model and its History."""
    folder = tmp_path_factory.mktemp("tensorboard")
    argv = [
        "--epochs",
        str(EPOCHS),
        "--data",
        str(mnist_path),
        "--train-samples",
        "600",
        "--test-samples",
        "200",
        "--batch-size",
        "100",
        "--seed",
        "1",
        "--out",
        str(folder / "out"),
        "--logdir",
        str(folder / "logs"),
    ]
    args = cli.parse_args("vae_mlp", "", 50, "adam", argv)
    models = build_mlp_vae(latent_dim=2, seed=1)
    models[2].compile(optimizer="adam")
    history = workflow.fit_and_save(args, models[2], workflow.load_data(args, flatten=True))
    return folder / "logs" / "vae_mlp", models, history.history


@pytest.mark.parametrize("run_name,prefix", [("train", ""), ("validation", "val_")])
def test_the_losses_of_every_epoch_are_logged(run, run_name, prefix):
    logdir, _, history = run
    tags = read_events(logdir / run_name)
    for tag in LOSSES:
        steps = [step for step, _ in tags[tag]]
        assert steps == list(range(EPOCHS)), tag
        logged = [float(tf.make_ndarray(value.tensor)) for _, value in tags[tag]]
        expected = history[prefix + tag.removeprefix("epoch_")]
        np.testing.assert_allclose(logged, expected, rtol=1e-6)


def test_digits_generated_from_fixed_z_are_logged_every_epoch(run):
    logdir, (_, decoder, _), _ = run
    images = read_events(logdir / "generated")["generated_digits"]
    assert [step for step, _ in images] == list(range(EPOCHS))
    pictures = []
    for _, value in images:
        width, height, png = value.tensor.string_val
        assert (int(width), int(height)) == (4 * 28, 4 * 28)  # 16 digits, 4x4
        pictures.append(tf.io.decode_png(png).numpy())
        assert pictures[-1].shape == (112, 112, 1)
    assert not np.array_equal(pictures[0], pictures[-1])  # the decoder learnt in between
    # The last picture is what the trained decoder makes of the seed's 16 points.
    z = keras.random.normal((16, 2), seed=1)
    digits = keras.ops.convert_to_numpy(decoder(z, training=False)).reshape(4, 4, 28, 28)
    expected = digits.transpose(0, 2, 1, 3).reshape(112, 112) * 255
    np.testing.assert_allclose(pictures[-1][..., 0], expected, atol=1.0)


def _usage_error(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.parse_args("vae_mlp", "", 1, "adam", argv)
    assert caught.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    return lines[0]


def test_logdir_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a folder")
    line = _usage_error(["--logdir", str(tmp_path / "notes.txt")], capsys)
    assert "--logdir" in line and "is a file, not a folder" in line


def test_logdir_with_weights_is_a_usage_error(tmp_path, capsys):
    line = _usage_error(["-w", str(tmp_path / "any.h5"), "--logdir", str(tmp_path)], capsys)
    assert "--logdir logs training" in line and "give one or the other" in line


def test_logdir_without_the_tensorboard_package_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    line = _usage_error(["--logdir", str(tmp_path), "--out", str(tmp_path)], capsys)
    assert "needs tensorboard" in line and "pip install tensorboard" in line
