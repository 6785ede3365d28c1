"""A conditional VAE (Sohn et al. 2015): the digit's class goes in beside the image and beside z.

Encoder `q(z | x, y)` and decoder `p(x | z, y)` both see the one-hot label
`y`. The label then carries what the class explains (which digit), and z
is left with what it does not (slant, stroke width, size): decoding one z
with each label draws every digit in one style, and asking for a class is
asking for a label. The loss is the VAE's, the negative ELBO of `x` given
`y`: the reconstruction of `x` plus `KL(q(z|x, y) || N(0, I))`.

>>> encoder, decoder, cvae = build_conditional_vae()
>>> cvae.compile(optimizer="adam")
>>> cvae.fit((x_train, one_hot(y_train, 10)), epochs=50, batch_size=128,
...          validation_data=((x_test, one_hot(y_test, 10)), None))
>>> plot_class_grid(decoder, "classes.png", seed=1)
"""

import keras
import numpy as np
from keras import layers

from vae.models import OUTPUT_DTYPE, VAE, _gaussian_encoder, _refuse_logits_loss
from vae.plotting import _draw_rows, plot_digits, to_pixels

__all__ = [
    "ConditionalVAE",
    "build_conditional_vae",
    "generate",
    "one_hot",
    "plot_class_grid",
    "plot_class_samples",
]


@keras.saving.register_keras_serializable(package="vae")
class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder also see the example's one-hot class label.

    Inputs are pairs `(x, labels)`. The encoder maps `[x, labels]` to
    `[z_mean, z_log_var, z]`, the decoder maps `[z, labels]` to the
    reconstruction of `x`; the loss and its metrics (`loss`,
    `reconstruction_loss`, `kl_loss`) are `VAE`'s, of `x` alone: the label
    is given, not reconstructed. Constructor arguments, `compile` and the
    saved config are `VAE`'s.

    Args:
        encoder: a model mapping `[x, labels]` to `[z_mean, z_log_var, z]`.
        decoder: a model mapping `[z, labels]` to the reconstruction of `x`.
        loss, kl, beta, **kwargs: as for `VAE`.

    Example:

    >>> encoder, decoder, cvae = build_conditional_vae()
    >>> cvae.compile(optimizer="adam")
    >>> cvae.fit((x_train, one_hot(y_train, 10)), epochs=50, batch_size=128,
    ...          validation_data=((x_test, one_hot(y_test, 10)), None))
    >>> cvae.evaluate((x_test, one_hot(y_test, 10)), return_dict=True)["loss"]
    """

    def call(self, inputs, training=None):
        # fit((x, labels)) with no targets hands the pair over as the inputs.
        x, labels = inputs
        z_mean, z_log_var, z = self.encoder([x, labels], training=training)
        reconstruction = self.decoder([z, labels], training=training)
        # The terms VAE.compute_loss reads: x's reconstruction and the KL of
        # the encoder's Gaussian, exactly as VAE.call keeps them.
        self._set_loss_terms(x, reconstruction, z_mean, z_log_var, z)
        return reconstruction

    @property
    def num_classes(self):
        """The width of the one-hot labels the model takes."""
        return _num_classes(self.decoder)


def build_conditional_vae(
    original_dim=784,
    num_classes=10,
    intermediate_dim=512,
    latent_dim=2,
    loss="bce",
    seed=None,
    beta=1.0,
):
    """The MLP VAE of `build_mlp_vae`, conditioned on a one-hot class label (the Keras "CVAE").

    Encoder `[x (784), label (10)] -> concat -> 512 (relu) -> (z_mean,
    z_log_var) -> z`; decoder `[z, label] -> concat -> 512 (relu) -> 784
    (sigmoid)`. The three models share their layers: training `vae` changes
    what `encoder` and `decoder` compute.

    Args:
        original_dim: length of a flattened input (28 * 28 for MNIST).
        num_classes: number of classes, the width of the one-hot labels.
        intermediate_dim: width of the hidden layer of encoder and decoder.
        latent_dim: dimension of z.
        loss: reconstruction term, `"bce"` or `"mse"`.
        seed: seed of the sampling layer's random stream, or `None`.
        beta: weight of the KL term in the loss (1: the ELBO; see `VAE`).

    Returns:
        `(encoder, decoder, vae)`: the encoder maps `[x, labels]` to
        `[z_mean, z_log_var, z]`, the decoder maps `[z, labels]` to pixel
        probabilities, and `vae` is a `ConditionalVAE` taking `(x, labels)`.

    Example:

    >>> encoder, decoder, cvae = build_conditional_vae(latent_dim=2)
    >>> cvae.compile(optimizer="adam")
    >>> digits = decoder.predict([np.zeros((10, 2)), one_hot(np.arange(10), 10)])
    """
    _refuse_logits_loss(loss)
    inputs = keras.Input(shape=(original_dim,), name="encoder_input")
    encoder_labels = keras.Input(shape=(num_classes,), name="encoder_labels")
    x = layers.Concatenate(name="encoder_concat")([inputs, encoder_labels])
    x = layers.Dense(intermediate_dim, activation="relu", name="encoder_dense")(x)
    encoder = _gaussian_encoder([inputs, encoder_labels], x, latent_dim, seed)

    latent_inputs = keras.Input(shape=(latent_dim,), name="z_sampling")
    decoder_labels = keras.Input(shape=(num_classes,), name="decoder_labels")
    x = layers.Concatenate(name="decoder_concat")([latent_inputs, decoder_labels])
    x = layers.Dense(intermediate_dim, activation="relu", name="decoder_dense")(x)
    outputs = layers.Dense(
        original_dim, activation="sigmoid", name="decoder_output", dtype=OUTPUT_DTYPE
    )(x)
    decoder = keras.Model([latent_inputs, decoder_labels], outputs, name="decoder")

    vae = ConditionalVAE(encoder, decoder, loss=loss, beta=beta, name="conditional_vae")
    vae.build([(None, original_dim), (None, num_classes)])
    return encoder, decoder, vae


def one_hot(labels, num_classes):
    """Integer class labels as float32 one-hot rows.

    Args:
        labels: integers in `[0, num_classes)`, any shape.
        num_classes: the number of classes.

    Returns:
        An array of shape `labels.shape + (num_classes,)`.

    Raises:
        ValueError: a label is not an integer in `[0, num_classes)`
            (`keras.utils.to_categorical` would wrap a -1 to the last class).

    Example:

    >>> one_hot([0, 2], 3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    labels = np.asarray(labels)
    if labels.size and (
        not np.issubdtype(labels.dtype, np.integer)
        or labels.min() < 0
        or labels.max() >= num_classes
    ):
        raise ValueError(
            f"labels must be integers in [0, {num_classes}), got {labels.dtype} values "
            f"from {labels.min()} to {labels.max()}"
        )
    return np.eye(num_classes, dtype=np.float32)[labels]


def _num_classes(decoder):
    return decoder.input_shape[1][-1]


def _latent_draws(n, latent_dim, seed):
    # NumPy rather than keras.random: the same seed gives the same z, hence
    # the same pictures, on every Keras backend.
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


def generate(decoder, labels, z=None, seed=None, logits=False, batch_size=128):
    """Digits of the given classes, decoded from z drawn from the prior N(0, I) (or given).

    Args:
        decoder: a conditional decoder, mapping `[z, one-hot labels]` to digits.
        labels: `(n,)` integer classes, or `(n, num_classes)` one-hot rows.
        z: `(n, latent_dim)` latent points to decode; `None` draws them.
        seed: integer seed of the draws of z (equal seeds, equal digits, on
            every backend), or `None`.
        logits: the decoder outputs logits; return their sigmoid.
        batch_size: prediction batch size.

    Returns:
        The `(n, ...)` pixels in [0, 1], shaped as the decoder's output.

    Example:

    >>> sevens = generate(decoder, np.full(16, 7), seed=1)
    """
    num_classes = _num_classes(decoder)
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = one_hot(labels, num_classes)
    if z is None:
        z = _latent_draws(len(labels), decoder.input_shape[0][-1], seed)
    z = np.asarray(z, dtype=np.float32)
    if len(z) != len(labels):
        raise ValueError(f"{len(z)} latent points for {len(labels)} labels")
    decoded = decoder.predict([z, labels.astype(np.float32)], batch_size=batch_size, verbose=0)
    return to_pixels(decoded, logits)


def _check_classes(decoder, num_classes):
    if _num_classes(decoder) != num_classes:
        raise ValueError(
            f"num_classes={num_classes}, but the decoder takes {_num_classes(decoder)} classes"
        )


def plot_class_grid(
    decoder,
    filename,
    num_classes=10,
    n=10,
    seed=None,
    class_names=None,
    image_shape=None,
    show=False,
    logits=False,
):
    """Draws one row per class, each decoding the same `n` draws of z.

    A column is one z, one "style", written as every class: what the label
    carries and what z carries, side by side.

    Args:
        decoder: a conditional decoder, mapping `[z, one-hot labels]` to digits.
        filename: the picture to write.
        num_classes: number of rows; the decoder's number of classes.
        n: number of draws of z, the columns.
        seed: integer seed of the draws, or `None`.
        class_names: the rows' labels; `None`: `0`, `1`, ...
        image_shape: `(height, width[, channels])` of flat decoder outputs;
            `None`: square grey images, or the decoder's own image shape
            (see `vae.plotting.as_images`).
        show: also open the figure in a window.
        logits: the decoder outputs logits: draw their sigmoid.

    Returns:
        The digits, `(num_classes, n, ...)` pixels in [0, 1], each shaped as
        the decoder's output: `[c, j]` is class `c` decoded from the `j`-th z.

    Example:

    >>> plot_class_grid(decoder, "classes.png", seed=1)
    """
    _check_classes(decoder, num_classes)
    names = [str(c) for c in range(num_classes)] if class_names is None else list(class_names)
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    z = _latent_draws(n, decoder.input_shape[0][-1], seed)
    # Class-major order: row c is class c on the same n draws of z.
    labels = np.repeat(np.arange(num_classes), n)
    digits = generate(decoder, labels, z=np.tile(z, (num_classes, 1)), logits=logits)
    digits = digits.reshape(num_classes, n, *digits.shape[1:])
    _draw_rows(list(digits), names, filename, show, image_shape)
    return digits


def plot_class_samples(
    decoder,
    digit,
    n,
    filename,
    seed=None,
    class_names=None,
    image_shape=None,
    show=False,
    logits=False,
):
    """Generates `n` digits of the class `digit` and draws them as a grid titled with the class.

    The grid is `vae.plotting.plot_digits`'s: 50 digits make 5x10, a square
    number a square.

    Args:
        decoder: a conditional decoder, mapping `[z, one-hot labels]` to digits.
        digit: the class to draw, an integer in `[0, num_classes)`.
        n: number of digits.
        filename: the picture to write.
        seed: integer seed of the draws of z, or `None`.
        class_names: names of the classes, for the title; `None`: the number.
        image_shape: `(height, width[, channels])` of flat decoder outputs
            (see `plot_class_grid`).
        show: also open the figure in a window.
        logits: the decoder outputs logits: draw their sigmoid.

    Returns:
        The `n` generated digits, pixel values in [0, 1].

    Example:

    >>> plot_class_samples(decoder, 7, 50, "sevens.png", seed=1)
    """
    digits = generate(decoder, np.full(n, digit), seed=seed, logits=logits)
    name = str(digit) if class_names is None else class_names[digit]
    plot_digits(digits, filename, title=f"class {name}", show=show, image_shape=image_shape)
    return digits
