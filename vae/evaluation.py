"""How good is a VAE: the test-set ELBO and the importance-sampled log-likelihood.

For a digit `x` and `k` draws `z_i ~ q(z|x)` from the encoder,

    log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)

(Burda et al. 2015, "Importance Weighted Autoencoders", eq. 13). Its mean
over the draws is at least the ELBO and at most `log p(x)`, and it rises to
`log p(x)` as `k` grows; the literature reports it with `k = 5000`. The
work is `k` decoder passes per digit, so digits and draws are taken in
chunks of a bounded number of decoder passes, and the log-mean-exp is
accumulated chunk by chunk.

`log p(x|z)` is the likelihood of the model's reconstruction term (see
`vae.losses.reconstruction_log_likelihood`): Bernoulli for `"bce"` and
`"bce_logits"`, which is a probability only for binary digits (binarize them
first: `vae.data.binarize`); a Gaussian of variance 1/2 per pixel for `"mse"`,
a density.

Example:

>>> log_px = importance_sampled_log_likelihood(vae, binarize(x_test, "dynamic"), k=5000)
>>> nll, standard_error = mean_and_standard_error(-log_px)
"""

import math
import warnings
import weakref

import keras
import numpy as np
from keras import ops

from vae.losses import gaussian_log_density, kl_divergence, reconstruction_log_likelihood


class ImportanceWeights(keras.Model):
    """Per digit: the log-sum-exp of the log importance weights of `draws` draws, and more.

    For digits `x` (shape `(m, ...)`), draws standard normal noise
    `epsilon_ij` (`noise`) inside the compiled call, decodes `z_ij = z_mean_i
    + exp(z_log_var_i / 2) * epsilon_ij` and returns, per digit `i`:

    - `logsumexp_j(log p(x_i|z_ij) + log p(z_ij) - log q(z_ij|x_i))`,
    - `sum_j log p(x_i|z_ij)`,
    - the analytic `KL(q(z|x_i) || p(z))`,

    so that chunks of draws combine exactly into the log-mean-exp and the
    ELBO. The noise never leaves the compiled function: drawn on the host it
    cost a tenth of a digit's scan (benchmarks/README.md, "Scoring speed").
    A model so that `predict_on_batch` compiles it on every backend; a
    transient view of the VAE's own layers, never saved.

    Args:
        encoder: a model mapping `x` to `[z_mean, z_log_var, z]`.
        decoder: a model mapping `z` to the reconstruction.
        loss: the reconstruction term, `"bce"`, `"mse"` or `"bce_logits"`.
        draws: draws of z per digit and call.

    Example:

    >>> weights = ImportanceWeights(vae.encoder, vae.decoder, vae.reconstruction, draws=5000)
    >>> weights.reseed(0)
    >>> log_sum_w, sum_log_px_z, kl = weights.predict_on_batch(x)
    """

    def __init__(self, encoder, decoder, loss="bce", draws=1, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction = loss
        self.draws = draws
        self.seed_generator = keras.random.SeedGenerator()
        # The encoder and decoder arrive built; there is nothing of our own.
        # Built now, JAX's first predict_on_batch skips a whole eager call.
        self.built = True

    def reseed(self, seed, stream=0):
        """Start the draws afresh from integer `seed`, as `SeedGenerator(seed)` would.

        Models with different `stream`s draw different noise from one seed.
        """
        state = self.seed_generator.state
        state.assign(ops.convert_to_tensor([seed, stream << 24], dtype=state.dtype))

    def noise(self, z_mean):
        """Standard normal draws `(digits, draws, latent_dim)` for `z_mean`, fresh every call."""
        digits, latent_dim = ops.shape(z_mean)
        return keras.random.normal(
            (digits, self.draws, latent_dim), dtype="float32", seed=self.seed_generator
        )

    def call(self, x):
        z_mean, z_log_var, _ = self.encoder(x, training=False)
        epsilon = self.noise(z_mean)
        log_weights, log_px_z, _ = log_importance_weights(
            self.decoder, self.reconstruction, x, z_mean, z_log_var, epsilon
        )
        kl = kl_divergence(ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32"))
        return ops.logsumexp(log_weights, axis=1), ops.sum(log_px_z, axis=1), kl


def log_importance_weights(decoder, loss, x, z_mean, z_log_var, epsilon, training=False):
    """`log p(x|z_ij) + log p(z_ij) - log q(z_ij|x_i)` for `s` draws `z_ij` per digit.

    Args:
        decoder: a model mapping z to the reconstruction.
        loss: the reconstruction term, `"bce"`, `"mse"` or `"bce_logits"`.
        x: the digits, `(m, ...)`.
        z_mean, z_log_var: the encoder's Gaussian of each digit, `(m, latent_dim)`.
        epsilon: standard normal noise `(m, s, latent_dim)`: the draws are
            `z_ij = z_mean_i + exp(z_log_var_i / 2) * epsilon_ij`.
        training: passed to the decoder.

    Returns:
        `(log_weights, log_px_z, decoded)`: the first two `(m, s)`, and the
        decoder's outputs, `(m * s, ...)`, draw `j` of digit `i` in row `i * s + j`.
    """
    z_mean = ops.cast(z_mean, "float32")[:, None, :]
    z_log_var = ops.cast(z_log_var, "float32")[:, None, :]
    epsilon = ops.cast(epsilon, "float32")
    z = z_mean + ops.exp(0.5 * z_log_var) * epsilon  # (m, s, latent_dim)
    digits, draws = ops.shape(epsilon)[0], ops.shape(epsilon)[1]
    decoded = decoder(ops.reshape(z, (-1, ops.shape(z)[-1])), training=training)
    # Row i * s + j of the decoded batch belongs to digit i.
    repeated = ops.repeat(ops.cast(x, "float32"), draws, axis=0)
    # Scored straight from the decoder's output: on TensorFlow a sigmoid's
    # output carries its logits there, which keeps "bce" exact.
    log_px_z = reconstruction_log_likelihood(repeated, ops.cast(decoded, "float32"), loss)
    log_px_z = ops.reshape(log_px_z, (digits, draws))
    log_weights = log_px_z + gaussian_log_density(z) - gaussian_log_density(z, z_mean, z_log_var)
    return log_weights, log_px_z, decoded


def is_binary(x):
    """Whether every value of `x` is 0 or 1: where a Bernoulli likelihood is a probability."""
    x = np.asarray(x)
    return bool(np.all((x == 0) | (x == 1)))


# Decoder passes per compiled call. 5000, all the draws of one digit at
# k = 5000: on the 2-core CPU Burda's MLP scored a digit in 22 ms, against
# 27 ms with 1000 (the call's own cost, a few ms, paid five times); the conv
# VAE took 677 against 681 ms (benchmarks/README.md).
PASSES_PER_STEP = 5000

# ImportanceWeights per VAE and draws count, so that each compiled function
# is traced once, not on every call (likelihood regret scores one image at a
# time).
_WEIGHTS = weakref.WeakKeyDictionary()


def _importance_weights(vae, draws):
    models = _WEIGHTS.setdefault(vae, {})
    weights = models.get(draws)
    if weights is None or weights.reconstruction != vae.reconstruction:
        weights = models[draws] = ImportanceWeights(
            vae.encoder, vae.decoder, vae.reconstruction, draws
        )
    return weights


def _predictor(weights):
    """`weights.predict_on_batch`, or on JAX the same compiled call without Keras's bookkeeping.

    That bookkeeping (the model's state gathered, then written back) cost
    5 ms a call on the 2-core CPU, against 20 ms for a digit's 5000 passes
    of Burda's MLP. Here the state is read once per scan; only the seed
    generator's changes, and it is reseeded before every scan.
    """
    if keras.backend.backend() != "jax" or weights.run_eagerly:
        return weights.predict_on_batch
    import jax

    step = weights.__dict__.get("_jitted_call")
    if step is None:
        step = weights._jitted_call = jax.jit(weights.stateless_call)
    trainable = [v.value for v in weights.trainable_variables]
    state = [v.value for v in weights.non_trainable_variables]

    def predict(x):
        nonlocal state
        outputs, state = step(trainable, state, x)
        return [np.asarray(output) for output in outputs]

    return predict


def _scan(vae, x, k, batch_size, seed, verbose):
    """Per digit: the log-mean-exp of `k` importance weights, and the ELBO from the same draws."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    x = np.asarray(x, dtype=np.float32)
    # At most batch_size decoder passes per step: all k draws of several
    # digits, or a share of the draws of one digit (the last share smaller).
    draws_per_step = min(k, batch_size)
    digits_per_step = max(1, batch_size // draws_per_step)
    shares = [min(draws_per_step, k - done) for done in range(0, k, draws_per_step)]
    weights = {draws: _importance_weights(vae, draws) for draws in shares}
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    for stream, model in enumerate(weights.values()):
        model.reseed(seed, stream)
    predict = {draws: _predictor(model) for draws, model in weights.items()}
    progress = keras.utils.Progbar(len(x), verbose=verbose, unit_name="digit")
    log_px = np.empty(len(x), dtype=np.float64)
    elbo = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), digits_per_step):
        digits = x[start : start + digits_per_step]
        log_sums, log_px_z_sum = [], 0.0
        for draws in shares:
            log_sum, log_px_z, kl = predict[draws](digits)
            log_sums.append(log_sum)
            log_px_z_sum = log_px_z_sum + log_px_z.astype(np.float64)
        stop = start + len(digits)
        log_px[start:stop] = ops.convert_to_numpy(
            ops.logsumexp(ops.stack(log_sums, axis=1), axis=1)
        ) - math.log(k)
        elbo[start:stop] = log_px_z_sum / k - kl
        progress.add(len(digits))
    return log_px, elbo


def _warn_if_improper(vae, x):
    if vae.reconstruction in ("bce", "bce_logits") and not is_binary(x):
        warnings.warn(
            "the digits are not binary: binary cross-entropy on grey levels is not a proper "
            "likelihood, so this number is no log-probability and compares with no published "
            "one; binarize the digits (vae.data.binarize) for a likelihood",
            stacklevel=3,
        )


def elbo(vae, x, samples=1, batch_size=PASSES_PER_STEP, seed=None, verbose=0):
    """The evidence lower bound of every digit, in nats (the negative of the VAE's loss).

    `E_q[log p(x|z)] - KL(q(z|x) || p(z))`: the expectation estimated with
    `samples` draws of z per digit, the KL term in closed form.

    Args:
        vae: a `VAE` (anything with `encoder`, `decoder` and `reconstruction`).
        x: the digits, shape `(n, ...)` as the encoder takes them.
        samples: draws of z per digit.
        batch_size: at most this many decoder passes at once (bounds memory).
        seed: integer seed of the draws, or `None`.
        verbose: 1 shows a progress bar.

    Returns:
        A float64 array of shape `(n,)`.

    Example:

    >>> values = elbo(vae, x_test)
    >>> mean, standard_error = mean_and_standard_error(values)
    """
    _warn_if_improper(vae, x)
    return _scan(vae, x, samples, batch_size, seed, verbose)[1]


def importance_sampled_log_likelihood(
    vae, x, k=5000, batch_size=PASSES_PER_STEP, seed=None, verbose=1, return_elbo=False
):
    """The importance-sampled estimate of `log p(x)` of every digit, with `k` draws each.

    `log (1/k) sum_i exp(log p(x|z_i) + log p(z_i) - log q(z_i|x))` with
    `z_i ~ q(z|x)`, computed with `logsumexp` chunk by chunk: memory stays
    bounded by `batch_size` decoder passes whatever `k` and the number of
    digits (k = 5000 on the 10,000 test digits is 50 million passes).

    Args:
        vae: a `VAE` (anything with `encoder`, `decoder` and `reconstruction`).
        x: the digits, shape `(n, ...)`; binary for the Bernoulli losses (else
            a warning: binary cross-entropy on grey levels is no likelihood).
        k: importance samples per digit.
        batch_size: at most this many decoder passes at once.
        seed: integer seed of the draws, or `None`.
        verbose: 1 shows a progress bar (`keras.utils.Progbar`), 0 none.
        return_elbo: also return each digit's ELBO, estimated from the same
            `k` draws (analytic KL).

    Returns:
        A float64 array of shape `(n,)`: the estimates of `log p(x)` in nats
        (the negative log-likelihood is its negative); with `return_elbo`,
        `(log_px, elbo)`.

    Example:

    >>> log_px = importance_sampled_log_likelihood(vae, x_binary, k=1000)
    >>> nll, standard_error = mean_and_standard_error(-log_px)
    """
    _warn_if_improper(vae, x)
    log_px, elbos = _scan(vae, x, k, batch_size, seed, verbose)
    return (log_px, elbos) if return_elbo else log_px


def mean_and_standard_error(values):
    """The mean of per-digit values and its standard error, `std / sqrt(n)`.

    Example:

    >>> nll, standard_error = mean_and_standard_error(-log_px)
    >>> print(f"NLL {nll:.2f} +- {standard_error:.2f} nats")
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))
