"""The terms of the VAE loss and the log-densities behind them, per example, in `keras.ops`.

Every function returns one value per example (shape `(batch,)`), summed over
all other axes, so the loss of a batch is `mean(reconstruction + kl)` as in
the original Keras examples (their `mean * original_dim` is a sum over pixels).
"""

import math

import keras
import numpy as np
from keras import ops

# "bce" and "mse" score decoders that output pixel values (a sigmoid layer);
# "bce_logits" scores decoders that output logits, as the TensorFlow tutorial's.
# A likelihood with learned parameters (DiscretizedLogistic) is a layer, given
# as the loss in place of a name.
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
        loss: a `DiscretizedLogistic` (its negative log-probability), `"bce"`,
            binary cross-entropy summed over pixels (the Bernoulli
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
    if isinstance(loss, DiscretizedLogistic):
        return -loss(x, x_decoded)
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

    For a `DiscretizedLogistic` it is the log-probability of 8-bit pixels.
    For `"bce"` and `"bce_logits"` it is the Bernoulli log-probability,
    `-reconstruction_loss`: a proper log-probability only for binary `x`. For
    `"mse"` it is the Gaussian of variance 1/2 per pixel, the one whose
    negative log-density is the squared error plus a constant:
    `-sum((x - mean)**2) - (D / 2) * log(pi)` for `D` pixels.

    Args:
        x: the inputs, shape `(batch, ...)`.
        x_decoded: the decoder's outputs, as for `reconstruction_loss`.
        loss: `"bce"`, `"mse"`, `"bce_logits"` or a `DiscretizedLogistic`.

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


# Half the width of the bin of one 8-bit level, for pixels scaled to [0, 1].
_HALF_BIN = 0.5 / 255


@keras.saving.register_keras_serializable(package="vae")
class DiscretizedLogistic(keras.layers.Layer):
    """The likelihood of 8-bit pixels: a logistic around the decoder's output, integrated per level.

    Pixel ``v`` of 0..255 is read as ``x = v / 255``; its probability is the
    mass that a logistic of mean ``mean`` (the decoder's output) and scale
    ``s`` puts in the bin of width 1/255 around ``x``, the bins of 0 and 255
    reaching out to minus and plus infinity, so that the 256 levels' masses
    sum to 1 (Salimans et al. 2017, "PixelCNN++", eq. 2, with one logistic).
    Its negative log, summed over the pixels and divided by ``D log 2``, is
    the bits per dimension that the likelihood literature reports.

    ``s`` is learned: one log-scale per channel, a weight of this layer,
    trained with the model.

    Args:
        channels: the images' channels (1 grey, 3 RGB).
        initial_scale: ``s`` before training.

    Call arguments:
        x: images in [0, 1] on the 8-bit grid, ``(batch, h, w, channels)``.
        mean: the decoder's output, same shape.

    Returns:
        ``log p(x | mean)`` per image, in nats, shape ``(batch,)``.

    Example:

    >>> likelihood = DiscretizedLogistic(3)
    >>> vae = VAE(encoder, decoder, loss=likelihood)
    """

    def __init__(self, channels, initial_scale=0.1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.initial_scale = float(initial_scale)
        self.log_scale = self.add_weight(
            shape=(self.channels,),
            initializer=keras.initializers.Constant(math.log(self.initial_scale)),
            name="log_scale",
        )

    def call(self, x, mean):
        x, mean = ops.cast(x, "float32"), ops.cast(mean, "float32")
        # PixelCNN++'s floor on the log-scale: the bin's mass stays computable.
        log_scale = ops.maximum(ops.cast(self.log_scale, "float32"), -7.0)
        inverse_scale = ops.exp(-log_scale)
        centred = x - mean
        upper = inverse_scale * (centred + _HALF_BIN)
        lower = inverse_scale * (centred - _HALF_BIN)
        # log sigmoid(upper) for level 0, log(1 - sigmoid(lower)) for level 255.
        log_below_upper = upper - ops.softplus(upper)
        log_above_lower = -ops.softplus(lower)
        # The bin's mass from the tail it is in: above the mean, 1 - F(lower)
        # minus 1 - F(upper), so that float32 never subtracts two numbers near 1.
        above = centred > 0
        mass = ops.sigmoid(ops.where(above, -lower, upper)) - ops.sigmoid(
            ops.where(above, -upper, lower)
        )
        # Where the bin's mass rounds away in float32, the density at its
        # centre times its width, in logs.
        middle = inverse_scale * centred
        log_density_times_width = middle - log_scale - 2.0 * ops.softplus(middle) - math.log(255)
        log_mass = ops.where(
            mass > 1e-5, ops.log(ops.maximum(mass, 1e-12)), log_density_times_width
        )
        per_pixel = ops.where(
            x < _HALF_BIN, log_below_upper, ops.where(x > 1 - _HALF_BIN, log_above_lower, log_mass)
        )
        return _sum_per_example(per_pixel)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "initial_scale": self.initial_scale,
        }


def bits_per_dimension(log_px, dimensions):
    """Bits per dimension of log-probabilities in nats: ``-log_px / (dimensions * log 2)``.

    Example:

    >>> bits_per_dimension(importance_sampled_log_likelihood(vae, x, k=100), 64 * 64 * 3)
    """
    return -np.asarray(log_px, np.float64) / (dimensions * math.log(2))
