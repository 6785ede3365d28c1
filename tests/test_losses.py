import itertools

import keras
import numpy as np
import pytest

from vae.losses import (
    gaussian_log_density,
    kl_divergence,
    monte_carlo_kl,
    reconstruction_log_likelihood,
    reconstruction_loss,
)

# Run on every Keras backend (pytest -m core).
pytestmark = pytest.mark.core

rng = np.random.default_rng(0)
X = rng.uniform(0, 1, (5, 28, 28, 1)).astype("float32")
PROBABILITIES = rng.uniform(0.01, 0.99, X.shape).astype("float32")
Z_MEAN = rng.normal(size=(5, 3)).astype("float32")
Z_LOG_VAR = rng.normal(size=(5, 3)).astype("float32")


def numpy_reconstruction(x, p, loss):
    if loss == "bce":
        per_pixel = -(x * np.log(p) + (1 - x) * np.log(1 - p))
    else:
        per_pixel = (x - p) ** 2
    return per_pixel.reshape(len(x), -1).sum(1)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_reconstruction_loss_matches_numpy(loss):
    got = keras.ops.convert_to_numpy(reconstruction_loss(X, PROBABILITIES, loss))
    np.testing.assert_allclose(got, numpy_reconstruction(X, PROBABILITIES, loss), rtol=1e-5)


def test_reconstruction_loss_of_flat_and_image_inputs_agree():
    flat = reconstruction_loss(X.reshape(5, -1), PROBABILITIES.reshape(5, -1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(flat),
        keras.ops.convert_to_numpy(reconstruction_loss(X, PROBABILITIES)),
        rtol=1e-6,
    )


def test_kl_divergence_matches_the_closed_form_and_a_monte_carlo_estimate():
    expected = -0.5 * (1 + Z_LOG_VAR - Z_MEAN**2 - np.exp(Z_LOG_VAR)).sum(1)
    got = keras.ops.convert_to_numpy(kl_divergence(Z_MEAN, Z_LOG_VAR))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Independently: E_q[log q(z) - log p(z)] by sampling.
    std = np.exp(0.5 * Z_LOG_VAR)
    z = Z_MEAN + std * rng.standard_normal((400_000, *Z_MEAN.shape))
    log_q = -0.5 * (((z - Z_MEAN) / std) ** 2 + Z_LOG_VAR + np.log(2 * np.pi)).sum(-1)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi)).sum(-1)
    np.testing.assert_allclose(got, (log_q - log_p).mean(0), atol=0.05)


def test_unknown_loss_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        reconstruction_loss(X, PROBABILITIES, "l1")


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_nan_probability_gives_a_nan_loss_not_an_error(loss):
    # A diverging run must reach the loss as NaN, where training stops cleanly
    # (PyTorch's own cross-entropy kernel raises instead).
    probabilities = PROBABILITIES.copy()
    probabilities[1, 3, 4, 0] = np.nan
    got = keras.ops.convert_to_numpy(reconstruction_loss(X, probabilities, loss))
    assert np.isnan(got[1])
    np.testing.assert_allclose(
        np.delete(got, 1), np.delete(numpy_reconstruction(X, PROBABILITIES, loss), 1), rtol=1e-5
    )


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's logits path")
def test_saturated_sigmoid_gives_the_exact_cross_entropy():
    # A logit of 30 rounds to probability 1.0 in float32; clipping would cap the
    # loss of a 0 pixel at -log(1e-7) = 16.1 nats, the truth is 30.
    import tensorflow as tf

    logits = np.array([[30.0, -30.0, 2.0]], "float32")
    x = np.array([[0.0, 1.0, 0.5]], "float32")
    exact = (np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits)))).sum(1)
    traced = tf.function(lambda x, l: reconstruction_loss(x, keras.activations.sigmoid(l)))
    np.testing.assert_allclose(traced(x, logits).numpy(), exact, rtol=1e-5)


def stable_sigmoid_cross_entropy(x, logits):
    """-x log sigmoid(l) - (1 - x) log sigmoid(-l), written as NumPy's logaddexp."""
    per_pixel = x * np.logaddexp(0, -logits) + (1 - x) * np.logaddexp(0, logits)
    return per_pixel.reshape(len(x), -1).sum(1)


def test_bce_of_logits_matches_numpy_even_for_extreme_logits():
    logits = rng.normal(scale=4, size=X.shape).astype("float32")
    logits[0, 0, :3, 0] = [80.0, -80.0, 0.0]  # exp(80) overflows float32; the loss must not
    got = keras.ops.convert_to_numpy(reconstruction_loss(X, logits, "bce_logits"))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(
        got, stable_sigmoid_cross_entropy(X, logits.astype("float64")), rtol=1e-5
    )
    # Where probabilities are representable, the same as cross-entropy of the sigmoid.
    moderate = np.log(PROBABILITIES / (1 - PROBABILITIES))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reconstruction_loss(X, moderate, "bce_logits")),
        numpy_reconstruction(X, PROBABILITIES, "bce"),
        rtol=1e-4,
    )


def test_bernoulli_likelihood_sums_to_one_over_all_binary_images():
    logits = np.array([[1.5, -0.3, 4.0]], "float32")
    images = np.array(list(itertools.product([0.0, 1.0], repeat=3)), "float32")
    for loss, decoded in [("bce_logits", logits), ("bce", 1 / (1 + np.exp(-logits)))]:
        log_p = reconstruction_log_likelihood(images, np.repeat(decoded, 8, axis=0), loss)
        assert np.exp(keras.ops.convert_to_numpy(log_p)).sum() == pytest.approx(1.0, abs=1e-5)


def test_mse_likelihood_is_the_normalized_gaussian_of_variance_one_half():
    # Integrates to 1 over x (two pixels, a fine grid), and has variance 1/2 per pixel.
    grid = np.linspace(-6, 7, 1301, dtype="float32")
    x1, x2 = np.meshgrid(grid, grid)
    x = np.stack([x1.ravel(), x2.ravel()], axis=1)
    mean = np.broadcast_to(np.array([0.3, 0.8], "float32"), x.shape)
    density = np.exp(keras.ops.convert_to_numpy(reconstruction_log_likelihood(x, mean, "mse")))
    step = grid[1] - grid[0]
    assert density.sum() * step**2 == pytest.approx(1.0, abs=1e-4)
    variance = (density * (x[:, 0] - 0.3) ** 2).sum() * step**2
    assert variance == pytest.approx(0.5, abs=1e-3)
    # And it differs from the training loss by a constant only.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reconstruction_log_likelihood(X, PROBABILITIES, "mse")),
        -numpy_reconstruction(X, PROBABILITIES, "mse") - 784 / 2 * np.log(np.pi),
        rtol=1e-5,
    )


def test_gaussian_log_density_matches_numpy():
    z = rng.normal(size=(5, 3)).astype("float32")
    expected = -0.5 * (np.log(2 * np.pi) + Z_LOG_VAR + (z - Z_MEAN) ** 2 / np.exp(Z_LOG_VAR))
    expected = expected.sum(1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gaussian_log_density(z, Z_MEAN, Z_LOG_VAR)), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gaussian_log_density(z)),
        (-0.5 * (np.log(2 * np.pi) + z**2)).sum(1),
        rtol=1e-5,
    )


def test_monte_carlo_kl_averages_to_the_closed_form():
    std = np.exp(0.5 * Z_LOG_VAR)
    z = (Z_MEAN + std * rng.standard_normal((100_000, *Z_MEAN.shape))).astype("float32")
    estimates = keras.ops.convert_to_numpy(
        monte_carlo_kl(
            z.reshape(-1, 3), np.tile(Z_MEAN, (100_000, 1)), np.tile(Z_LOG_VAR, (100_000, 1))
        )
    ).reshape(100_000, 5)
    exact = keras.ops.convert_to_numpy(kl_divergence(Z_MEAN, Z_LOG_VAR))
    np.testing.assert_allclose(estimates.mean(0), exact, atol=0.05)
    assert estimates.std(0).min() > 0.1  # a sample, not the closed form
