"""Pictures of a trained VAE: the latent space, the digit manifold, model diagrams."""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np


def _finish(figure, filename, show):
    figure.savefig(filename, bbox_inches="tight")
    if show:
        plt.show()
    plt.close(figure)


def plot_latent_means(encoder, x_test, y_test, filename, batch_size=128, show=False):
    """Scatters the test set's latent means, one colour per digit class.

    With `latent_dim > 2` the first two dimensions of z_mean are drawn.
    """
    z_mean, _, _ = encoder.predict(x_test, batch_size=batch_size, verbose=0)
    figure, axes = plt.subplots(figsize=(12, 10))
    colours = plt.get_cmap("tab10")
    for digit in np.unique(y_test):
        chosen = y_test == digit
        axes.scatter(
            z_mean[chosen, 0], z_mean[chosen, 1], s=4, color=colours(int(digit) % 10),
            label=str(digit),
        )
    axes.legend(title="digit", markerscale=4, loc="upper right")
    axes.set_xlabel("z[0]")
    axes.set_ylabel("z[1]")
    if z_mean.shape[1] > 2:
        axes.set_title(f"first 2 of {z_mean.shape[1]} latent dimensions")
    _finish(figure, filename, show)


def decode_grid(decoder, n=30, z_range=4.0, batch_size=128):
    """Decodes an `n` x `n` grid of z over `[-z_range, z_range]^2`.

    Only z[0] (columns) and z[1] (rows, top is high) vary; any further latent
    dimensions stay at 0, the prior's mean.

    Returns:
        `(image, grid_x, grid_y)`: the tiled digits as one 2-D array, and the
        z values of the columns and rows.
    """
    latent_dim = decoder.input_shape[-1]
    grid_x = np.linspace(-z_range, z_range, n)
    grid_y = np.linspace(-z_range, z_range, n)[::-1]
    z = np.zeros((n * n, latent_dim), dtype="float32")
    z[:, 0] = np.tile(grid_x, n)
    z[:, 1] = np.repeat(grid_y, n)
    # One batched predict instead of n * n single-digit calls.
    digits = decoder.predict(z, batch_size=batch_size, verbose=0)
    side = int(round(np.sqrt(np.prod(digits.shape[1:]))))
    digits = digits.reshape(n, n, side, side)
    return digits.transpose(0, 2, 1, 3).reshape(n * side, n * side), grid_x, grid_y


def plot_digit_manifold(decoder, filename, n=30, z_range=4.0, batch_size=128, show=False):
    """Draws the 30x30 digits decoded over the latent plane, with z ticks."""
    image, grid_x, grid_y = decode_grid(decoder, n, z_range, batch_size)
    side = image.shape[0] // n
    figure, axes = plt.subplots(figsize=(10, 10))
    ticks = np.arange(side // 2, n * side, side)
    axes.set_xticks(ticks, np.round(grid_x, 1), rotation=90)
    axes.set_yticks(ticks, np.round(grid_y, 1))
    axes.set_xlabel("z[0]")
    axes.set_ylabel("z[1]")
    if decoder.input_shape[-1] > 2:
        axes.set_title(f"z[0], z[1] varied; z[2:{decoder.input_shape[-1]}] = 0")
    axes.imshow(image, cmap="Greys_r")
    _finish(figure, filename, show)


def plot_results(models, data, batch_size=128, model_name="vae_mnist", show=False):
    """Writes the two pictures of the original examples.

    `<model_name>/vae_mean.png`: the test set's latent means coloured by
    digit; `<model_name>/digits_over_latent.png`: digits decoded over
    z in [-4, 4]^2.

    Args:
        models: `(encoder, decoder)`.
        data: `(x_test, y_test)`.
        batch_size: prediction batch size.
        model_name: folder the pictures go to (created if needed).
        show: also open the figures in a window.

    Example:

    >>> plot_results((encoder, decoder), (x_test, y_test), model_name="vae_mlp")
    """
    encoder, decoder = models
    x_test, y_test = data
    os.makedirs(model_name, exist_ok=True)
    plot_latent_means(
        encoder, x_test, y_test, os.path.join(model_name, "vae_mean.png"), batch_size, show
    )
    plot_digit_manifold(
        decoder, os.path.join(model_name, "digits_over_latent.png"), batch_size=batch_size,
        show=show,
    )


def plot_architecture(encoder, decoder, prefix):
    """Draws the diagrams `<prefix>_encoder.png`, `<prefix>_decoder.png` and `<prefix>.png`.

    Needs Graphviz's `dot`; without it, one warning instead of a crash.

    Returns:
        The files written.
    """
    import keras

    # The VAE drawn as the original examples built it: decoder(encoder(x)[2]).
    inputs = keras.Input(shape=encoder.input.shape[1:], name="encoder_input")
    vae = keras.Model(inputs, decoder(encoder(inputs)[2]), name=os.path.basename(prefix))
    written = []
    for model, filename in [
        (encoder, f"{prefix}_encoder.png"),
        (decoder, f"{prefix}_decoder.png"),
        (vae, f"{prefix}.png"),
    ]:
        try:
            keras.utils.plot_model(
                model, to_file=filename, show_shapes=True, show_layer_names=True
            )
        except ImportError as error:
            warnings.warn(
                f"model diagrams skipped: {str(error).splitlines()[0]} "
                "(install Graphviz, e.g. apt-get install graphviz, and pydot)",
                stacklevel=2,
            )
            break
        written.append(filename)
    return written
