"""The two terms of the VAE loss, per example, in `keras.ops`.

Every function returns one value per example (shape `(batch,)`), summed over
all other axes, so the loss of a batch is `mean(reconstruction + kl)` as in
the original Keras examples (their `mean * original_dim` is a sum over pixels).
"""

from keras import ops

RECONSTRUCTION_LOSSES = ("bce", "mse")


def _sum_per_example(values):
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


def reconstruction_loss(x, x_decoded, loss="bce"):
    """Reconstruction term: how badly `x_decoded` explains `x`, in nats per example.

    Args:
        x: the inputs, values in [0, 1], shape `(batch, ...)`.
        x_decoded: the decoder's outputs (probabilities), same shape.
        loss: `"bce"`, binary cross-entropy summed over pixels (the Bernoulli
            negative log-likelihood; on the TensorFlow backend Keras computes
            it from the sigmoid's logits, which is exact and stable), or
            `"mse"`, squared error summed over pixels.

    Returns:
        A tensor of shape `(batch,)`.

    Example:

    >>> reconstruction_loss(x, vae(x), loss="mse")
    """
    if loss == "bce":
        per_pixel = ops.binary_crossentropy(x, x_decoded)
    elif loss == "mse":
        per_pixel = ops.square(x - x_decoded)
    else:
        raise ValueError(
            f"unknown loss {loss!r}: use one of {', '.join(RECONSTRUCTION_LOSSES)}"
        )
    return _sum_per_example(per_pixel)


def kl_divergence(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example, in nats.

    `-0.5 * sum(1 + z_log_var - z_mean**2 - exp(z_log_var))`.

    Args:
        z_mean: encoder means, shape `(batch, latent_dim)`.
        z_log_var: encoder log-variances, same shape.

    Returns:
        A tensor of shape `(batch,)`.
    """
    return -0.5 * ops.sum(
        1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1
    )
