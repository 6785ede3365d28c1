"""vae.scores: per-image scores of a model trained on real MNIST, against independent references."""

import io
import lzma
import math

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from vae import scores
from vae.data import binarize


@pytest.fixture(scope="module")
def trained(mnist_flat):
    """A small MLP VAE trained for 3 epochs on 10,000 dynamically binarized MNIST digits."""
    import keras

    from vae.data import DynamicBinarization
    from vae.models import build_mlp_vae

    (x_train, _), (x_test, _) = mnist_flat
    keras.utils.set_random_seed(1)
    _, _, vae = build_mlp_vae(intermediate_dim=256, latent_dim=8, seed=1)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(DynamicBinarization(x_train[:10000], 100, seed=1), epochs=3, verbose=0)
    digits = binarize(x_test[:200], "dynamic")
    noise = (np.random.default_rng(2).random((200, 784)) < 0.5).astype(np.float32)
    return vae, digits, noise


@pytest.mark.core
def test_nll_ranks_uniform_noise_above_test_digits(trained):
    vae, digits, noise = trained
    inside, outside = scores.nll(vae, digits, k=100, seed=0), scores.nll(vae, noise, k=100, seed=0)
    assert inside.shape == (200,) and outside.shape == (200,)
    assert scores.ood_metrics(inside, outside)["auroc"] >= 0.99
    # A noise image's NLL is about 784 log 2 = 543 nats or more, a digit's far less.
    assert np.median(outside) > 500 > 200 > np.median(inside)


def test_ood_metrics_are_scikit_learns_with_the_data_as_positives():
    rng = np.random.default_rng(0)
    reference, data = rng.normal(0, 1, 5000), rng.normal(1, 1, 4000)
    metrics = scores.ood_metrics(reference, data)
    labels = np.r_[np.zeros(5000), np.ones(4000)]
    assert metrics["auroc"] == pytest.approx(roc_auc_score(labels, np.r_[reference, data]))
    # Two unit Gaussians one apart: AUROC Phi(1 / sqrt 2) = 0.760, within sampling error.
    assert metrics["auroc"] == pytest.approx(0.760, abs=0.015)
    # FPR at 95% TPR: the reference above the data's 5% quantile 1 - 1.645, Phi(0.645) = 0.741.
    assert metrics["fpr95"] == pytest.approx(0.741, abs=0.025)
    assert 0.5 < metrics["auprc"] <= 1


def test_threshold_flags_the_requested_fraction_of_the_reference():
    reference = np.arange(1000, dtype=np.float64)
    cut = scores.threshold(reference, 0.05)
    assert np.mean(reference > cut) == pytest.approx(0.05, abs=0.002)


def _png_bits(digit):
    buffer = io.BytesIO()
    pixels = np.rint(digit.reshape(28, 28) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True, compress_level=9)
    return 8 * len(buffer.getvalue())


def test_input_complexity_is_the_formula_on_pillows_png_length(trained):
    vae, digits, _ = trained
    nll = scores.nll(vae, digits[:5], k=50, seed=3)
    expected = [(n / math.log(2) - _png_bits(d)) / 784 for n, d in zip(nll, digits[:5])]
    np.testing.assert_allclose(scores.input_complexity(vae, digits[:5], nll, "png"), expected)
    assert scores.compressed_bits(digits[:1], "png")[0] == _png_bits(digits[0])
    # The default, LZMA: the standard library's own length of the raw pixels.
    pixels = np.rint(digits[0] * 255).astype(np.uint8).tobytes()
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 20}]
    raw = len(lzma.compress(pixels, format=lzma.FORMAT_RAW, filters=filters))
    assert scores.compressed_bits(digits[:1])[0] == 8 * raw
    np.testing.assert_allclose(
        scores.input_complexity(vae, digits[:1], nll[:1]), (nll[0] / math.log(2) - 8 * raw) / 784
    )
    # A black image compresses to a few bytes (PNG's chunks take some 70);
    # fair coin flips to no less than their entropy, one bit per pixel.
    black = np.zeros((1, 784), np.float32)
    coins = (np.random.default_rng(0).random((1, 784)) < 0.5).astype(np.float32)
    for compressor in scores.COMPRESSORS:
        assert scores.compressed_bits(black, compressor)[0] < 8 * 80
        assert scores.compressed_bits(coins, compressor)[0] > 784


def test_reconstruction_error_is_the_models_term_at_the_posterior_mean(trained):
    vae, digits, _ = trained
    z_mean = scores.latent_codes(vae, digits[:10])
    probabilities = np.clip(vae.decoder.predict(z_mean, verbose=0), 1e-7, 1 - 1e-7)
    x = digits[:10]
    cross_entropy = -np.sum(x * np.log(probabilities) + (1 - x) * np.log(1 - probabilities), 1)
    np.testing.assert_allclose(scores.reconstruction_error(vae, x), cross_entropy, rtol=1e-4)


@pytest.mark.core
def test_likelihood_regret_is_positive_and_larger_for_noise(trained):
    vae, digits, noise = trained
    inside = scores.likelihood_regret(vae, digits[:12], k=200, seed=0, verbose=0)
    outside = scores.likelihood_regret(vae, noise[:12], k=200, seed=0, verbose=0)
    # The fine-tuned encoder fits its one image better: the NLL falls, up to
    # the sampling noise of two estimates with 200 draws.
    assert inside.mean() > -1.0
    assert outside.mean() > inside.mean() + 10
    assert scores.ood_metrics(inside, outside)["auroc"] >= 0.9


def test_likelihood_ratio_is_the_nll_minus_the_backgrounds(trained):
    vae, digits, _ = trained
    nll = scores.nll(vae, digits[:20], k=50, seed=0)
    np.testing.assert_allclose(
        scores.likelihood_ratio(vae, vae, digits[:20], k=50, seed=0, nll_nats=nll), 0.0, atol=1e-9
    )


def test_compute_scores_refuses_unknown_names_and_a_ratio_without_background(trained):
    vae, digits, _ = trained
    with pytest.raises(ValueError, match="unknown score 'likelihood'"):
        scores.compute_scores(vae, digits, ["likelihood"])
    with pytest.raises(ValueError, match="needs a background model"):
        scores.compute_scores(vae, digits, ["likelihood_ratio"])
