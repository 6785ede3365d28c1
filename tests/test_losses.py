import keras
import numpy as np
import pytest

from vae.losses import kl_divergence, reconstruction_loss

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
