"""The TensorFlow tutorial's convolutional VAE: builder, loss, and the scripts end to end."""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from vae.models import VAE, build_cnn_vae, build_conv_vae, build_mlp_vae

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
rng = np.random.default_rng(0)


def test_layers_and_shapes_are_the_tutorials():
    encoder, decoder, vae = build_conv_vae()
    convs = [l for l in encoder.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides, c.padding) for c in convs] == [
        (32, (3, 3), (2, 2), "valid"),
        (64, (3, 3), (2, 2), "valid"),
    ]
    assert encoder.get_layer("encoder_flatten").output.shape == (None, 6 * 6 * 64)
    assert [tuple(o.shape) for o in encoder.outputs] == [(None, 50)] * 3
    assert decoder.get_layer("decoder_dense").units == 7 * 7 * 32
    deconvs = [l for l in decoder.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [(d.filters, d.strides, d.padding, d.activation.__name__) for d in deconvs] == [
        (64, (2, 2), "same", "relu"),
        (32, (2, 2), "same", "relu"),
        (1, (1, 1), "same", "linear"),
    ]
    assert decoder.output.shape == (None, 28, 28, 1)
    assert vae.name == "cvae" and vae.reconstruction == "bce_logits" and vae.kl == "analytic"
    # The tutorial's parameter counts: its Dense(2 * 50) head is our two Dense(50) heads.
    assert encoder.count_params() == (9 * 32 + 32) + (9 * 32 * 64 + 64) + (2304 * 100 + 100)
    assert decoder.count_params() == (
        (50 * 1568 + 1568) + (9 * 32 * 64 + 64) + (9 * 64 * 32 + 32) + (9 * 32 + 1)
    )


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_probability_losses_put_a_sigmoid_on_the_output(loss):
    _, decoder, vae = build_conv_vae(latent_dim=4, loss=loss)
    assert decoder.get_layer("decoder_output").activation is keras.activations.sigmoid
    out = decoder.predict(rng.normal(size=(3, 4)) * 10, verbose=0)
    assert out.min() >= 0 and out.max() <= 1


def test_loss_is_sigmoid_cross_entropy_of_the_logits_plus_kl():
    encoder, decoder, vae = build_conv_vae(latent_dim=8, seed=1)
    x = (rng.uniform(size=(6, 28, 28, 1)) > 0.5).astype("float32")
    logits = keras.ops.convert_to_numpy(vae(x)).astype("float64")
    total = keras.ops.convert_to_numpy(vae.compute_loss(x=x, y_pred=logits))
    z_mean, z_log_var, _ = [o.astype("float64") for o in encoder.predict(x, verbose=0)]
    recon = (np.logaddexp(0, logits) - x * logits).reshape(6, -1).sum(1)
    kl = -0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var)).sum(1)
    np.testing.assert_allclose(total, (recon + kl).mean(), rtol=1e-4)


def test_monte_carlo_kl_is_an_unbiased_noisy_estimate_of_the_closed_form():
    encoder, decoder, _ = build_mlp_vae(latent_dim=5, seed=2)
    vae = VAE(encoder, decoder, kl="monte_carlo")
    x = np.repeat(rng.uniform(size=(1, 784)).astype("float32"), 20000, axis=0)
    vae(x)
    monte_carlo = keras.ops.convert_to_numpy(vae._loss_terms[1])
    z_mean, z_log_var, _ = encoder.predict(x[:1], verbose=0)
    exact = -0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var)).sum()
    assert monte_carlo.std() > 0.3  # one draw per digit: noisy
    assert monte_carlo.mean() == pytest.approx(exact, abs=5 * monte_carlo.std() / np.sqrt(20000))


@pytest.mark.parametrize("kl", ["analytic", "monte_carlo"])
def test_round_trips_through_a_keras_file_in_safe_mode(kl, tmp_path):
    encoder, decoder, vae = build_conv_vae(latent_dim=6, kl=kl, seed=3)
    vae.save(tmp_path / "cvae.keras")
    loaded = keras.models.load_model(tmp_path / "cvae.keras")
    assert isinstance(loaded, VAE)
    assert (loaded.reconstruction, loaded.kl) == ("bce_logits", kl)
    z = rng.normal(size=(4, 6)).astype("float32")
    np.testing.assert_array_equal(
        loaded.decoder.predict(z, verbose=0), decoder.predict(z, verbose=0)
    )


def test_unknown_kl_and_logits_for_sigmoid_decoders_are_refused():
    with pytest.raises(ValueError, match="unknown kl 'exact'"):
        build_conv_vae(kl="exact")
    with pytest.raises(ValueError, match="needs a decoder that outputs logits"):
        build_cnn_vae(loss="bce_logits")
    # The MLP's decoder can end in logits instead (Burda et al.'s model).
    _, decoder, _ = build_mlp_vae(loss="bce_logits")
    assert decoder.get_layer("decoder_output").activation.__name__ == "linear"
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        build_conv_vae(loss="l1")


def run(script, *args, cwd):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_help_shows_the_tutorials_defaults_and_own_flags(tmp_path):
    text = run("cvae.py", "--help", cwd=tmp_path)
    for flag in ["--learning-rate", "--kl", "--samples", "--binarize", "--weights", "--seed"]:
        assert flag in text
    assert re.search(r"--batch-size BATCH_SIZE\s+batch size \(default 100\)", text)
    assert re.search(r"dimension of z \(default 50", text)
    assert "default static" in text and "default 0.0001" in text


def evaluate(argv, capsys):
    """examples/evaluate.py in this process (its flags live in vae.cli, its flow in vae.workflow)."""
    from vae import cli, workflow

    args = cli.parse_evaluation_args("evaluate", argv)
    build = {"mlp": build_mlp_vae, "cnn": build_cnn_vae, "conv": build_conv_vae}[args.model]
    result = workflow.load_then_evaluate(args, build(latent_dim=args.latent_dim, loss=args.loss))
    return result, capsys.readouterr().out


def test_cvae_trains_writes_frames_and_a_gif_then_evaluate_scores_it(mnist_path, tmp_path, capsys):
    data = [
        "--train-samples",
        "500",
        "--test-samples",
        "200",
        "--binarize",
        "dynamic",
        "--seed",
        "0",
        "--data",
        str(mnist_path),
    ]
    out = run(
        "cvae.py", "--epochs", "2", "--samples", "20", *data, "--out", "results", cwd=tmp_path
    )
    lines = re.findall(r"Epoch (\d)/2: test-set ELBO (-[\d.]+) nats per digit, ([\d.]+) s", out)
    assert [line[0] for line in lines] == ["1", "2"]
    first, second = (float(elbo) for _, elbo, _ in lines)
    # The same script, seed and test digits, no epoch: the untrained model's
    # -ELBO (about 536 nats: its decoder says 1/2 for every pixel, nearly).
    untrained = run("cvae.py", "--epochs", "0", *data, "--out", "untrained", cwd=tmp_path)
    untrained_elbo = -float(re.search(r"test loss: ([\d.]+) nats per digit", untrained)[1])
    # It learned: 10 Adam steps at the tutorial's 1e-4 gained 4.6 nats in epoch 2
    # and 8.6 over the untrained model; one draw of z per digit, with a KL
    # near 0, moves these numbers by about 0.1.
    assert second > first + 1.0, (first, second)
    assert second > untrained_elbo + 4.0, (untrained_elbo, second)
    results = tmp_path / "results"
    frames = sorted((results / "cvae").glob("image_at_epoch_*.png"))
    assert [f.name for f in frames] == [f"image_at_epoch_{e:04d}.png" for e in range(3)]
    with Image.open(results / "cvae" / "cvae.gif") as gif:
        assert gif.n_frames == 3
    for name in ["cvae_mnist.h5", "cvae/samples.png", "cvae/digits_over_latent.png"]:
        assert (results / name).stat().st_size > 1000, name

    result, scored = evaluate(
        [
            "-w",
            str(results / "cvae_mnist.h5"),
            "--model",
            "conv",
            "--k",
            "20",
            "--test-samples",
            "40",
            "--data",
            str(mnist_path),
        ],
        capsys,
    )
    elbo = float(re.search(r"test ELBO: (-[\d.]+) \+- [\d.]+ nats", scored)[1])
    nll = float(re.search(r"NLL \(importance sampled, k=20\): ([\d.]+) \+- [\d.]+ nats", scored)[1])
    assert "binarized by one fixed Bernoulli draw" in scored
    assert 50 < nll <= -elbo + 0.5
    assert result["nll"][0] == pytest.approx(nll, abs=0.01)


def test_evaluate_reports_no_likelihood_for_cross_entropy_on_grey_levels(
    mnist_path, tmp_path, capsys
):
    from vae.weights import save_weights

    _, _, vae = build_mlp_vae(seed=0)
    save_weights(vae, tmp_path / "mlp.h5")
    result, scored = evaluate(
        [
            "-w",
            str(tmp_path / "mlp.h5"),
            "--model",
            "mlp",
            "--binarize",
            "none",
            "--test-samples",
            "30",
            "--data",
            str(mnist_path),
        ],
        capsys,
    )
    assert "test ELBO" in scored and "NLL (importance" not in scored and result["nll"] is None
    assert "not a proper likelihood" in scored


def test_evaluate_reads_the_script_flags(tmp_path):
    out = run("evaluate.py", "--help", cwd=tmp_path)
    for flag in ["--weights", "--model", "--k", "--binarize", "--test-samples", "--mse"]:
        assert flag in out
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "evaluate.py"), "--model", "conv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2 and "-w/--weights" in completed.stderr
