"""Per-epoch generation frames, their GIF, and the per-epoch ELBO line."""

import contextlib
import io
import re

import numpy as np
import pytest
from PIL import Image

from vae.callbacks import EpochSummary, GenerationFrames, KLWarmup
from vae.models import build_conv_vae, build_mlp_vae

X = np.random.default_rng(0).uniform(size=(64, 784)).astype("float32")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs of an MLP VAE with both callbacks, and what it printed."""
    folder = tmp_path_factory.mktemp("frames")
    _, _, vae = build_mlp_vae(seed=0)
    vae.compile(optimizer="adam")
    frames = GenerationFrames(folder, n=16, seed=1, gif="run.gif")
    summary = EpochSummary()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        history = vae.fit(
            X[:48],
            epochs=2,
            batch_size=16,
            validation_data=(X[48:], None),
            callbacks=[summary, frames],
            verbose=0,
        )
    return folder, frames, summary, history, printed.getvalue()


def test_one_frame_per_epoch_after_the_untrained_one_and_a_gif_of_them(run):
    folder, frames, *_ = run
    expected = [folder / f"image_at_epoch_{e:04d}.png" for e in range(3)]
    assert frames.frames == [str(p) for p in expected]
    assert all(path.stat().st_size > 1000 for path in expected)
    with Image.open(frames.gif_path) as gif:
        assert gif.n_frames == 3 and gif.info["loop"] == 0


def test_epoch_summary_prints_the_test_elbo_and_time_after_each_epoch(run):
    *_, summary, history, printed = run
    assert printed.splitlines() == summary.lines and len(summary.lines) == 2
    for epoch, line in enumerate(summary.lines):
        match = re.fullmatch(
            r"Epoch (\d)/2: test-set ELBO (-[\d.]+) nats per digit, ([\d.]+) s", line
        )
        assert match, line
        assert int(match[1]) == epoch + 1
        assert float(match[2]) == pytest.approx(-history.history["val_loss"][epoch], abs=0.01)


def frames_of(callback, epochs, model):
    """The callback driven as fit drives it, without training."""
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(epochs):
        callback.on_epoch_end(epoch)
    callback.on_train_end()
    return callback


def test_without_the_initial_frame_there_is_one_per_epoch(tmp_path):
    _, _, vae = build_mlp_vae(seed=0)
    frames = frames_of(GenerationFrames(tmp_path, initial=False, gif="g.gif"), 2, vae)
    assert [f.rsplit("_", 1)[1] for f in frames.frames] == ["0001.png", "0002.png"]
    with Image.open(frames.gif_path) as gif:
        assert gif.n_frames == 2


def test_frames_decode_the_same_latent_points_every_epoch(tmp_path):
    # A model that does not change must give equal digits: z is drawn once.
    _, _, vae = build_mlp_vae(seed=0)
    frames = frames_of(GenerationFrames(tmp_path, n=9, seed=3, gif=None), 1, vae)
    pictures = []
    for path in frames.frames:
        with Image.open(path) as image:
            pictures.append(np.asarray(image.convert("L")))
    # The titles differ ("epoch 0", "epoch 1"); the digits below them do not.
    body = slice(pictures[0].shape[0] // 5, None)
    np.testing.assert_array_equal(pictures[0][body], pictures[1][body])
    assert frames.gif_path is None


def test_logits_decoders_are_drawn_through_a_sigmoid(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(
        "vae.callbacks.plot_digits", lambda digits, filename, title=None: drawn.append(digits)
    )
    _, decoder, vae = build_conv_vae(latent_dim=4, seed=0)
    output = decoder.get_layer("decoder_output")
    kernel, bias = output.get_weights()
    output.set_weights([np.zeros_like(kernel), np.full_like(bias, -3.0)])  # logit -3 everywhere
    frames_of(GenerationFrames(tmp_path, n=4, gif=None), 0, vae)
    np.testing.assert_allclose(drawn[0], 1 / (1 + np.exp(3.0)), rtol=1e-5)


# --------------------------------------------------------------------------
# KL warm-up and beta


@pytest.fixture(scope="module")
def warmed_up(mnist_flat):
    """Four epochs of a beta = 4 VAE on real digits, with a 2-epoch warm-up."""
    (x_train, _), (x_test, _) = mnist_flat
    _, _, vae = build_mlp_vae(intermediate_dim=64, seed=0, beta=4.0)
    vae.compile(optimizer="adam")
    history = vae.fit(
        x_train[:1000],
        epochs=4,
        batch_size=100,
        verbose=0,
        validation_data=(x_test[:200], None),
        callbacks=[KLWarmup(2)],
    )
    return vae, history.history


@pytest.mark.core
def test_kl_warmup_raises_the_weight_linearly_from_0_to_beta(warmed_up):
    vae, history = warmed_up
    assert history["kl_weight"] == [0.0, 2.0, 4.0, 4.0]
    assert float(vae.kl_weight) == 4.0


@pytest.mark.core
def test_loss_is_the_weighted_bound_and_negative_elbo_the_unweighted_one(warmed_up):
    _, history = warmed_up
    for prefix in ("", "val_"):
        reconstruction = np.array(history[prefix + "reconstruction_loss"])
        kl = np.array(history[prefix + "kl_loss"])
        weight = np.array(history["kl_weight"])
        np.testing.assert_allclose(
            history[prefix + "loss"], reconstruction + weight * kl, rtol=1e-4
        )
        np.testing.assert_allclose(
            history[prefix + "negative_elbo"], reconstruction + kl, rtol=1e-4
        )


def test_kl_warmup_of_no_epochs_keeps_beta():
    warmup = KLWarmup(0)
    assert [warmup.weight(epoch, 2.5) for epoch in range(3)] == [2.5, 2.5, 2.5]
    with pytest.raises(ValueError, match="epochs >= 0"):
        KLWarmup(-1)


def test_epoch_summary_prints_the_unweighted_elbo():
    summary = EpochSummary()
    summary.set_params({"epochs": 1})
    summary.on_epoch_begin(0)
    summary.on_epoch_end(
        0, {"loss": 120.0, "val_loss": 130.0, "negative_elbo": 100.0, "val_negative_elbo": 110.0}
    )
    assert "test-set ELBO -110.00 nats" in summary._pending
