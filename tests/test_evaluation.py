"""The ELBO and the importance-sampled log-likelihood against closed forms and real digits.

A linear-Gaussian VAE, `z ~ N(0, I)`, `x | z ~ N(W z + b, I / 2)` (the
Gaussian of the "mse" loss), has `p(x) = N(b, W W^T + I / 2)` and a Gaussian
posterior in closed form: the estimator's pieces (log p(x|z) with its
constant, log p(z), log q(z|x), the log-mean-exp over chunks) must reproduce
them.
"""

import keras
import numpy as np
import pytest

from vae.data import binarize
from vae.evaluation import (
    elbo,
    importance_sampled_log_likelihood,
    is_binary,
    mean_and_standard_error,
)
from vae.layers import Sampling
from vae.models import VAE, build_mlp_vae

# The estimator's numbers on every backend (the published NLLs were computed on
# JAX): CI runs the tests marked with it on JAX and PyTorch too.
core = pytest.mark.core

D, LATENT = 6, 2
rng = np.random.default_rng(0)
# Orthogonal columns make the true posterior's covariance diagonal, so a
# mean-field encoder can be exactly right.
Q, _ = np.linalg.qr(rng.normal(size=(D, LATENT)))
SCALES = np.array([2.0, 0.7])
W = Q * SCALES
B = rng.normal(size=D)
COVARIANCE = W @ W.T + 0.5 * np.eye(D)
X = rng.multivariate_normal(B, COVARIANCE, size=200).astype("float32")
# Posterior N(A (x - b), diag(1 / PRECISION)), from Bayes' rule for Gaussians.
PRECISION = 1 + 2 * SCALES**2
A = 2 * (W / PRECISION).T


def true_log_px(x):
    diff = x - B
    _, log_det = np.linalg.slogdet(COVARIANCE)
    mahalanobis = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(COVARIANCE), diff)
    return -0.5 * (mahalanobis + log_det + D * np.log(2 * np.pi))


def linear_gaussian_vae(mean_scale=1.0, log_var_shift=0.0):
    """The exact posterior as encoder, or (scaled mean, shifted variance) a wrong one."""
    inputs = keras.Input((D,))
    z_mean_layer = keras.layers.Dense(LATENT)
    z_log_var_layer = keras.layers.Dense(LATENT)
    z_mean, z_log_var = z_mean_layer(inputs), z_log_var_layer(inputs)
    encoder = keras.Model(inputs, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])])
    z_mean_layer.set_weights([(mean_scale * A).T, -mean_scale * A @ B])
    z_log_var_layer.set_weights([np.zeros((D, LATENT)), -np.log(PRECISION) + log_var_shift])
    latent = keras.Input((LATENT,))
    decoder_layer = keras.layers.Dense(D)
    decoder = keras.Model(latent, decoder_layer(latent))
    decoder_layer.set_weights([W.T, B])
    return VAE(encoder, decoder, loss="mse")


def kl_to_true_posterior(x, mean_scale, log_var_shift):
    posterior_mean = (x - B) @ A.T
    posterior_var = 1 / PRECISION
    q_mean, q_var = mean_scale * posterior_mean, posterior_var * np.exp(log_var_shift)
    return 0.5 * (
        np.log(posterior_var / q_var) + (q_var + (q_mean - posterior_mean) ** 2) / posterior_var - 1
    ).sum(1)


@core
@pytest.mark.parametrize("k,batch_size,digits", [(1, 1000, 200), (7, 3, 30), (50, 1000, 200)])
def test_with_the_exact_posterior_every_estimate_is_log_px(k, batch_size, digits):
    # q(z|x) = p(z|x) makes every importance weight p(x): no noise for any k,
    # whatever the chunking of digits (1000 // 50) or draws (7 in 3, 3, 1).
    estimate = importance_sampled_log_likelihood(
        linear_gaussian_vae(), X[:digits], k=k, batch_size=batch_size, verbose=0, seed=1
    )
    np.testing.assert_allclose(estimate, true_log_px(X[:digits]), atol=1e-4)


@core
def test_with_the_exact_posterior_the_elbo_is_log_px():
    values = elbo(linear_gaussian_vae(), X, samples=500, seed=2)
    assert abs((values - true_log_px(X)).mean()) < 0.02


@core
def test_with_a_wrong_posterior_the_estimate_rises_to_log_px_as_k_grows():
    vae = linear_gaussian_vae(mean_scale=0.6, log_var_shift=1.0)
    truth = true_log_px(X)
    gaps, errors = {}, {}
    for k in (1, 10, 100, 1000):
        estimate, elbos = importance_sampled_log_likelihood(
            vae, X, k=k, batch_size=4000, verbose=0, seed=3, return_elbo=True
        )
        gaps[k], errors[k] = mean_and_standard_error(estimate - truth)
    # The ELBO is log p(x) - KL(q || posterior), both in closed form.
    expected_elbo = truth - kl_to_true_posterior(X, 0.6, 1.0)
    assert abs((elbos - expected_elbo).mean()) < 0.02
    assert (truth - expected_elbo).mean() > 1.0  # a posterior wrong enough to matter
    # One draw: a single-sample estimate of the ELBO (noisy: compare within 4 errors).
    assert abs(gaps[1] - (expected_elbo - truth).mean()) < 4 * errors[1]
    assert gaps[1] < gaps[10] < gaps[100] < 0.01
    assert abs(gaps[1000]) < 0.01


class _FixedNoise:
    """`ImportanceWeights.noise` serving slices of one array.

    `noise[i, j]` is draw `j` of digit `i` however the scan chunks digits and
    draws: a request for `s` draws of `m` digits is for the next `m` digits
    that still lack draws, each of which has had the same number `t` of draws
    so far, and gets `noise[first:first + m, t:t + s]`. So estimates with
    different `batch_size`s see the same draws, and the NumPy reference sees
    them too.
    """

    def __init__(self, noise):
        self.noise = noise
        self.taken = np.zeros(len(noise), dtype=int)

    def __call__(self, weights, z_mean):
        digits, draws, k = z_mean.shape[0], weights.draws, self.noise.shape[1]
        first = int(np.argmax(self.taken < k))
        assert self.taken[first] < k, "more draws asked for than the fixed noise holds"
        done = self.taken[first : first + digits].copy()
        assert len(done) == digits and np.all(done == done[0]), (
            f"the scan asked for {draws} draws of {digits} digits where digits {first}.. have "
            f"{done.tolist()}: it no longer takes digits in order, so this test's noise must "
            "be served otherwise"
        )
        start = int(done[0])
        assert start + draws <= k
        self.taken[first : first + digits] += draws
        return keras.ops.convert_to_tensor(
            self.noise[first : first + digits, start : start + draws]
        )


def _with_fixed_noise(monkeypatch, noise, vae, x, **kwargs):
    """`importance_sampled_log_likelihood` of `x`, draw `j` of digit `i` being `noise[i, j]`."""
    from vae import evaluation

    fixed = _FixedNoise(noise)
    compiled = evaluation._importance_weights

    def eager(vae, draws):
        # Run eagerly, so that the served noise is read on every call, not
        # traced into the compiled function once.
        weights = compiled(vae, draws)
        weights.run_eagerly = True
        return weights

    # A function, so that it binds as a method: fixed(weights, z_mean).
    monkeypatch.setattr(evaluation.ImportanceWeights, "noise", lambda *a: fixed(*a))
    monkeypatch.setattr(evaluation, "_importance_weights", eager)
    try:
        result = importance_sampled_log_likelihood(
            vae, x, k=noise.shape[1], verbose=0, return_elbo=True, **kwargs
        )
    finally:
        monkeypatch.undo()
    # Every draw of the array was used, each once: no noise of the scan's own.
    assert np.all(fixed.taken == noise.shape[1]), "the scan drew noise elsewhere"
    return result


def _wrong_posterior_by_numpy(x, epsilon, mean_scale, log_var_shift):
    """log (1/k) sum_j w_ij and the ELBO of the same draws, from the closed forms, in float64."""
    epsilon = epsilon.astype(np.float64)
    q_mean = mean_scale * (x - B) @ A.T  # (n, LATENT)
    q_log_var = -np.log(PRECISION) + log_var_shift
    z = q_mean[:, None, :] + np.exp(q_log_var / 2) * epsilon  # (n, k, LATENT)
    mean = z @ W.T + B
    # log N(x; W z + b, I / 2), log N(z; 0, I) and log q(z|x), summed over their axes.
    log_px_z = -((x[:, None, :] - mean) ** 2).sum(-1) - D / 2 * np.log(np.pi)
    log_pz = -0.5 * (z**2 + np.log(2 * np.pi)).sum(-1)
    log_qz = -0.5 * (np.log(2 * np.pi) + q_log_var + epsilon**2).sum(-1)
    log_w = log_px_z + log_pz - log_qz
    top = log_w.max(axis=1)
    log_px = top + np.log(np.exp(log_w - top[:, None]).mean(axis=1))
    kl = 0.5 * (np.exp(q_log_var) + q_mean**2 - 1 - q_log_var).sum(-1)
    return log_px, log_px_z.mean(axis=1) - kl


@core
def test_with_a_wrong_posterior_chunked_draws_give_the_estimate_of_all_draws_at_once(monkeypatch):
    # A wrong posterior makes the weights of a digit differ (with the exact one
    # they are all p(x), and any combination of chunks, their last, or the mean
    # of their log-mean-exps, gives log p(x)). k = 100 draws taken 7 at a time,
    # 15 chunks per digit (the last of 2), must give the estimate that all 100
    # at once give, from the same draws, and that NumPy gives from the closed forms.
    vae = linear_gaussian_vae(mean_scale=0.6, log_var_shift=1.0)
    x = X[:40]
    noise = np.random.default_rng(7).standard_normal((len(x), 100, LATENT)).astype("float32")
    chunked, chunked_elbo = _with_fixed_noise(monkeypatch, noise, vae, x, batch_size=7)
    whole, whole_elbo = _with_fixed_noise(monkeypatch, noise, vae, x, batch_size=4000)
    several, _ = _with_fixed_noise(monkeypatch, noise, vae, x, batch_size=300)  # 3 digits a step
    expected, expected_elbo = _wrong_posterior_by_numpy(x, noise, 0.6, 1.0)
    # float32 rounding of terms of a few nats (about 1e-6 here).
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-5)
    np.testing.assert_allclose(several, whole, rtol=0, atol=1e-5)
    np.testing.assert_allclose(whole, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(chunked_elbo, whole_elbo, rtol=0, atol=1e-5)
    np.testing.assert_allclose(whole_elbo, expected_elbo, rtol=0, atol=1e-5)
    # The test can fail: the weights differ enough that the wrong combinations,
    # the last chunk's log-mean-exp alone or the mean of the chunks', miss the
    # estimate of every digit by far more than the rounding.
    chunks = [
        _wrong_posterior_by_numpy(x, noise[:, j : j + 7], 0.6, 1.0)[0] for j in range(0, 100, 7)
    ]
    assert np.abs(chunks[-1] - expected).min() > 1e-3
    assert np.abs(np.mean(chunks, axis=0) - expected).min() > 1e-3


@core
def test_draws_are_chunked_within_the_batch_size(monkeypatch):
    from vae import evaluation

    shapes = []
    compiled = evaluation._predictor

    def recording(weights):
        predict = compiled(weights)

        def call(digits):
            shapes.append((len(digits), weights.draws, weights.decoder.input_shape[-1]))
            return predict(digits)

        return call

    monkeypatch.setattr(evaluation, "_predictor", recording)
    importance_sampled_log_likelihood(
        linear_gaussian_vae(), X[:10], k=250, batch_size=100, verbose=0
    )
    assert all(digits * draws <= 100 for digits, draws, _ in shapes)
    assert sum(digits * draws for digits, draws, _ in shapes) == 10 * 250
    shapes.clear()
    importance_sampled_log_likelihood(
        linear_gaussian_vae(), X[:10], k=30, batch_size=100, verbose=0
    )
    assert shapes[0] == (3, 30, LATENT) and len(shapes) == 4  # 3 + 3 + 3 + 1 digits


@core
def test_seeded_estimates_repeat():
    vae = linear_gaussian_vae(mean_scale=0.6, log_var_shift=1.0)
    first = importance_sampled_log_likelihood(vae, X[:20], k=20, verbose=0, seed=5)
    again = importance_sampled_log_likelihood(vae, X[:20], k=20, verbose=0, seed=5)
    other = importance_sampled_log_likelihood(vae, X[:20], k=20, verbose=0, seed=6)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@core
def test_trained_vae_on_binary_digits_has_nll_below_minus_elbo(mnist_flat, capsys):
    (x_train, _), (x_test, _) = mnist_flat
    x_train, x_test = binarize(x_train[:2000]), binarize(x_test[:100])
    encoder, decoder, vae = build_mlp_vae(latent_dim=8, seed=0)
    vae.compile(optimizer="adam")
    vae.fit(x_train, epochs=2, batch_size=100, verbose=0)
    log_px, elbos = importance_sampled_log_likelihood(vae, x_test, k=200, seed=0, return_elbo=True)
    assert "100/100" in capsys.readouterr().out  # the progress bar
    nll, nll_error = mean_and_standard_error(-log_px)
    minus_elbo, _ = mean_and_standard_error(-elbo(vae, x_test, seed=1))
    assert 60 < nll < minus_elbo - 1.0
    assert 0 < nll_error < 5
    assert np.mean(log_px >= elbos) > 0.95
    # The model's own loss on the same digits is -ELBO too (one draw, averaged).
    loss = vae.evaluate(x_test, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(minus_elbo, rel=0.03)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's logits path")
def test_probability_decoders_are_scored_exactly_when_saturated():
    encoder, decoder, vae = build_mlp_vae()
    output = decoder.get_layer("decoder_output")
    kernel, bias = output.get_weights()
    output.set_weights([np.zeros_like(kernel), np.full_like(bias, 30.0)])
    x = np.zeros((4, 784), "float32")
    # Every pixel 0 with logit 30: exactly -30 nats each (not the clipped -16.1).
    # The untrained encoder maps 0 to q = N(0, I) = p(z): every weight is p(x|z).
    log_px = importance_sampled_log_likelihood(vae, x, k=10, verbose=0)
    np.testing.assert_allclose(log_px, -30.0 * 784, rtol=1e-5)


def test_progress_bar_counts_digits_unless_verbose_is_0(capsys):
    vae = linear_gaussian_vae()
    importance_sampled_log_likelihood(vae, X[:30], k=4, batch_size=40, seed=0)
    assert "30/30" in capsys.readouterr().out
    importance_sampled_log_likelihood(vae, X[:30], k=4, batch_size=40, seed=0, verbose=0)
    elbo(vae, X[:30], seed=0)
    assert capsys.readouterr().out == ""


def test_grey_levels_with_cross_entropy_are_flagged():
    encoder, decoder, vae = build_mlp_vae()
    grey = np.full((3, 784), 0.5, "float32")
    assert not is_binary(grey) and is_binary(binarize(grey))
    with pytest.warns(UserWarning, match="not a proper likelihood"):
        importance_sampled_log_likelihood(vae, grey, k=2, verbose=0)
    with pytest.warns(UserWarning, match="not a proper likelihood"):
        elbo(vae, grey)


def test_mean_and_standard_error_match_numpy():
    values = rng.normal(3.0, 2.0, size=400)
    mean, error = mean_and_standard_error(values)
    assert mean == pytest.approx(values.mean())
    assert error == pytest.approx(values.std(ddof=1) / 20)


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be at least 1"):
        importance_sampled_log_likelihood(linear_gaussian_vae(), X[:2], k=0)
