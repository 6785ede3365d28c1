"""The terms of the VAE loss and the log-densities behind them, per example, in `keras.ops`.

Every function returns one value per example (shape `(batch,)`), summed over
all other axes, so the loss of a batch is `mean(reconstruction + kl)` as in
the original Keras examples (their `mean * original_dim` is a sum over pixels).
"""

import math

import keras
from keras import ops

# "bce" and "mse" score decoders that output pixel values (a sigmoid layer);
# "bce_logits" scores decoders that output logits, as the TensorFlow tutorial's.
RECONSTRUCTION_LOSSES = ("bce", "mse", "bce_logits")


def _sum_per_example(values):
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


def _unknown(loss):
    return ValueError(f"unknown loss {loss!r}: use one of {', '.join(RECONSTRUCTION_LOSSES)}")


def reconstruction_loss(x, x_decoded, loss="bce"):
    """Reconstruction term: how badly `x_decoded` explains `x`, in nats per example.

    Args:
        x: the inputs, values in [0, 1], shape `(batch, ...)`.
        x_decoded: the decoder's outputs, same shape: probabilities for
            `"bce"` and `"mse"`, logits for `"bce_logits"`.
        loss: `"bce"`, binary cross-entropy summed over pixels (the Bernoulli
            negative log-likelihood; on the TensorFlow backend Keras computes
            it from the sigmoid's logits, which is exact and stable), `"mse"`,
            squared error summed over pixels, or `"bce_logits"`, the binary
            cross-entropy of logits (sigmoid cross-entropy), exact on every
            backend.

    Returns:
        A tensor of shape `(batch,)`.

    Example:

    >>> reconstruction_loss(x, vae(x), loss="mse")
    """
    # Tensors from here on: NumPy arrays and PyTorch tensors do not mix.
    x, x_decoded = ops.convert_to_tensor(x), ops.convert_to_tensor(x_decoded)
    if loss == "bce":
        if keras.backend.backend() == "tensorflow":
            per_pixel = ops.binary_crossentropy(x, x_decoded)
        else:
            # Keras's own formula on JAX and PyTorch, written out because PyTorch's
            # kernel raises on a NaN probability: a diverging run must reach the
            # loss as NaN, where training stops cleanly (vae.safeguards).
            p = ops.clip(x_decoded, keras.config.epsilon(), 1.0 - keras.config.epsilon())
            per_pixel = -(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p))
    elif loss == "mse":
        per_pixel = ops.square(x - x_decoded)
    elif loss == "bce_logits":
        # -log sigmoid(l) * x - log sigmoid(-l) * (1 - x), rearranged so that
        # exp only ever sees -|l|: no overflow, no log(0), for any logit.
        logits = x_decoded
        per_pixel = ops.relu(logits) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
    else:
        raise _unknown(loss)
    return _sum_per_example(per_pixel)


def reconstruction_log_likelihood(x, x_decoded, loss="bce"):
    """`log p(x|z)` per example: the normalized density the reconstruction term stands for.

    For `"bce"` and `"bce_logits"` it is the Bernoulli log-probability,
    `-reconstruction_loss`: a proper log-probability only for binary `x`. For
    `"mse"` it is the Gaussian of variance 1/2 per pixel, the one whose
    negative log-density is the squared error plus a constant:
    `-sum((x - mean)**2) - (D / 2) * log(pi)` for `D` pixels.

    Args:
        x: the inputs, shape `(batch, ...)`.
        x_decoded: the decoder's outputs, as for `reconstruction_loss`.
        loss: `"bce"`, `"mse"` or `"bce_logits"`.

    Returns:
        A tensor of shape `(batch,)`, in nats.

    Example:

    >>> reconstruction_log_likelihood(x_binary, decoder(z), loss="bce_logits")
    """
    if loss == "mse":
        # Per pixel: log N(x; mean, 1/2) = -(x - mean)**2 - log(pi) / 2.
        return -_sum_per_example(ops.square(x - x_decoded) + 0.5 * math.log(math.pi))
    return -reconstruction_loss(x, x_decoded, loss)


def kl_divergence(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example, in nats.

    `-0.5 * sum(1 + z_log_var - z_mean**2 - exp(z_log_var))`.

    Args:
        z_mean: encoder means, shape `(batch, latent_dim)`.
        z_log_var: encoder log-variances, same shape.

    Returns:
        A tensor of shape `(batch,)`.
    """
    z_mean, z_log_var = ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def gaussian_log_density(z, mean=0.0, log_var=0.0):
    """`log N(z; mean, diag(exp(log_var)))`, summed over the last axis.

    With the defaults it is the standard normal prior `log p(z)`.

    Args:
        z: points, shape `(..., latent_dim)`.
        mean: means, broadcastable to `z`.
        log_var: log-variances, broadcastable to `z`.

    Returns:
        A tensor of shape `z.shape[:-1]`, in nats.

    Example:

    >>> log_q = gaussian_log_density(z, z_mean, z_log_var)
    >>> log_p = gaussian_log_density(z)
    """
    log_var = ops.convert_to_tensor(log_var, dtype=z.dtype)
    return -0.5 * ops.sum(
        math.log(2.0 * math.pi) + log_var + ops.square(z - mean) * ops.exp(-log_var), axis=-1
    )


def monte_carlo_kl(z, z_mean, z_log_var):
    """Single-sample estimate of the KL term: `log q(z|x) - log p(z)` at a drawn `z`.

    The estimator of the TensorFlow tutorial's loss `-(log p(x|z) + log p(z)
    - log q(z|x))`. Its mean over `z ~ q(z|x)` is `kl_divergence`, which has
    no sampling noise.

    Args:
        z: the sample decoded, shape `(batch, latent_dim)`.
        z_mean: encoder means, same shape.
        z_log_var: encoder log-variances, same shape.

    Returns:
        A tensor of shape `(batch,)`.
    """
    return gaussian_log_density(z, z_mean, z_log_var) - gaussian_log_density(z)
