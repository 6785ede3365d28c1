"""Pictures of a trained VAE: the latent space, the digit manifold, reconstructions,
interpolations, samples, model diagrams.

Decoders that output logits (`build_conv_vae`) pass `logits=True`: the
pictures show their sigmoid, the pixel probabilities. Images are grey or RGB,
of any size; flattened ones (an MLP's) give their `image_shape`, `(height,
width, channels)`, unless they are square and grey.
"""

import math
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np


def to_pixels(decoded, logits=False):
    """The decoder's outputs as pixel values in [0, 1], as a NumPy array.

    Args:
        decoded: decoder outputs (a NumPy array or tensor).
        logits: whether they are logits; if so their sigmoid is returned.
    """
    decoded = np.asarray(decoded, dtype=np.float32)
    # sigmoid(v) = exp(-log(1 + exp(-v))): logaddexp never overflows, unlike
    # 1 / (1 + exp(-v)) for very negative v.
    return np.exp(-np.logaddexp(0.0, -decoded)) if logits else decoded


def _finish(figure, filename, show):
    figure.savefig(filename, bbox_inches="tight")
    if show:
        plt.show()
    plt.close(figure)


def plot_latent_means(
    encoder, x_test, y_test, filename, batch_size=128, show=False, verbose=1, class_names=None
):
    """Scatters the test set's latent means, one colour per class.

    With `latent_dim > 2` the first two dimensions of z_mean are drawn.
    Without labels (`y_test=None`, a folder of images without class
    subfolders) every point has one colour, and the title says why.
    `class_names` names the classes in the legend (default: their numbers).
    `verbose=1` (the default) shows Keras's progress bar while the encoder
    runs; 0 silences it.
    """
    z_mean, _, _ = encoder.predict(x_test, batch_size=batch_size, verbose=verbose)
    figure, axes = plt.subplots(figsize=(12, 10))
    titles = []
    if y_test is None:
        axes.scatter(z_mean[:, 0], z_mean[:, 1], s=4, color="tab:blue")
        titles.append("no labels, so one colour")
    else:
        colours = plt.get_cmap("tab10" if len(np.unique(y_test)) <= 10 else "tab20")
        for label in np.unique(y_test):
            chosen = y_test == label
            name = class_names[int(label)] if class_names is not None else str(label)
            axes.scatter(
                z_mean[chosen, 0],
                z_mean[chosen, 1],
                s=4,
                color=colours(int(label) % colours.N),
                label=name,
            )
        axes.legend(
            title="class" if class_names is not None else "digit", markerscale=4, loc="upper right"
        )
    axes.set_xlabel("z[0]")
    axes.set_ylabel("z[1]")
    if z_mean.shape[1] > 2:
        titles.append(f"first 2 of {z_mean.shape[1]} latent dimensions")
    if titles:
        axes.set_title("; ".join(titles))
    _finish(figure, filename, show)


def decode_grid(
    decoder, n=30, z_range=4.0, batch_size=128, logits=False, verbose=1, image_shape=None
):
    """Decodes an `n` x `n` grid of z over `[-z_range, z_range]^2`.

    Only z[0] (columns) and z[1] (rows, top is high) vary; any further latent
    dimensions stay at 0, the prior's mean. With `logits=True` the decoder's
    outputs are logits and the image shows their sigmoid. `verbose=1` (the
    default) shows Keras's progress bar over the batches of the decodings (900
    for a 30x30 grid, slow for convolutional decoders on a CPU); 0 silences it.

    Returns:
        `(image, grid_x, grid_y)`: the tiled digits as one image (2-D for
        grey, 3-D for RGB), and the z values of the columns and rows.
    """
    latent_dim = decoder.input_shape[-1]
    grid_x = np.linspace(-z_range, z_range, n)
    grid_y = np.linspace(-z_range, z_range, n)[::-1]
    z = np.zeros((n * n, latent_dim), dtype="float32")
    z[:, 0] = np.tile(grid_x, n)
    z[:, 1] = np.repeat(grid_y, n)
    # One batched predict instead of n * n single-digit calls.
    digits = to_pixels(decoder.predict(z, batch_size=batch_size, verbose=verbose), logits)
    return tile(digits, n, n, image_shape), grid_x, grid_y


def as_images(pixels, image_shape=None):
    """`pixels` as `(count, height, width)` grey or `(count, height, width, 3)` RGB images.

    Args:
        pixels: `(count, ...)`: images, or flattened ones (an MLP's).
        image_shape: `(height, width, channels)` of flattened images; `None`
            reads the shape from `pixels`, or for flat rows takes square grey
            images (784 pixels: 28x28).
    """
    pixels = np.asarray(pixels)
    if image_shape is None:
        if pixels.ndim > 2:
            image_shape = pixels.shape[1:]
        else:
            side = math.isqrt(pixels.shape[1])
            if side * side != pixels.shape[1]:
                raise ValueError(
                    f"rows of {pixels.shape[1]} pixels are not square grey images: "
                    "pass image_shape=(height, width, channels)"
                )
            image_shape = (side, side)
    images = pixels.reshape(len(pixels), *image_shape)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    return images


def tile(digits, rows, columns, image_shape=None):
    """Tiles images row by row into one image; empty cells stay 0 (black).

    Args:
        digits: `(count, ...)` images or flattened images (see `as_images`),
            `count <= rows * columns`.
        rows: rows of the grid.
        columns: columns of the grid.
        image_shape: `(height, width, channels)` of flattened images.

    Returns:
        A `(rows * height, columns * width)` array, with a last axis of 3 for RGB.
    """
    images = as_images(digits, image_shape)
    height, width = images.shape[1:3]
    cells = np.zeros((rows * columns, *images.shape[1:]), dtype=images.dtype)
    cells[: len(images)] = images
    cells = cells.reshape(rows, columns, *images.shape[1:])
    return np.swapaxes(cells, 1, 2).reshape(rows * height, columns * width, *images.shape[3:])


# The most pixels a side of the manifold picture's grid of images spans:
# 30 MNIST digits are 840.
MANIFOLD_SIDE = 2048


def _image_side(decoder, image_shape=None):
    """The longer side, in pixels, of the decoder's images (flat ones: see `as_images`)."""
    if image_shape is not None:
        return max(image_shape[:2])
    shape = decoder.output_shape[1:]
    return max(shape[:2]) if len(shape) > 1 else math.isqrt(shape[0])


def plot_digit_manifold(
    decoder,
    filename,
    n=30,
    z_range=4.0,
    batch_size=128,
    show=False,
    logits=False,
    verbose=1,
    image_shape=None,
):
    """Draws the 30x30 digits decoded over the latent plane, with z ticks.

    Images larger than MNIST's get fewer points per side, as many as
    `MANIFOLD_SIDE` pixels hold (16 for 128x128): the figure is 1,000 pixels
    wide whatever the grid, and 30 x 30 photographs of 128x128, 177 MB of
    float32, took 640 MB more memory on their way into it. `verbose=1` (the
    default) shows a progress bar while the grid is decoded; 0 silences it.
    """
    n = min(n, max(2, MANIFOLD_SIDE // _image_side(decoder, image_shape)))
    image, grid_x, grid_y = decode_grid(
        decoder, n, z_range, batch_size, logits, verbose, image_shape
    )
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


def plot_results(
    models,
    data,
    batch_size=128,
    model_name="vae_mnist",
    show=False,
    logits=False,
    verbose=1,
    image_shape=None,
    class_names=None,
):
    """Writes the two pictures of the original examples.

    `<model_name>/vae_mean.png`: the test set's latent means coloured by
    digit; `<model_name>/digits_over_latent.png`: digits decoded over
    z in [-4, 4]^2.

    Args:
        models: `(encoder, decoder)`.
        data: `(x_test, y_test)`; `y_test` may be `None` (no labels).
        batch_size: prediction batch size.
        model_name: folder the pictures go to (created if needed).
        show: also open the figures in a window.
        logits: the decoder outputs logits (`build_conv_vae`); draw their sigmoid.
        verbose: 1 (the default) shows Keras's progress bars while the test
            digits are encoded and the grid is decoded; 0 none.
        image_shape: `(height, width, channels)` of a decoder's flat outputs
            (see `as_images`).
        class_names: the classes' names, for the legend.

    Example:

    >>> plot_results((encoder, decoder), (x_test, y_test), model_name="vae_mlp")
    """
    encoder, decoder = models
    x_test, y_test = data
    os.makedirs(model_name, exist_ok=True)
    plot_latent_means(
        encoder,
        x_test,
        y_test,
        os.path.join(model_name, "vae_mean.png"),
        batch_size,
        show,
        verbose,
        class_names,
    )
    plot_digit_manifold(
        decoder,
        os.path.join(model_name, "digits_over_latent.png"),
        batch_size=batch_size,
        show=show,
        logits=logits,
        verbose=verbose,
        image_shape=image_shape,
    )


def _draw_rows(rows, labels, filename, show, image_shape=None):
    """Draws equal-length rows of digits one above the other, each row named on the left."""
    columns = len(rows[0])
    image = tile(np.concatenate([as_images(row, image_shape) for row in rows]), len(rows), columns)
    side = image.shape[0] // len(rows)
    figure, axes = plt.subplots(figsize=(columns, len(rows) + 0.2))
    axes.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    axes.set_xticks([])
    axes.set_yticks(np.arange(side // 2, len(rows) * side, side), labels)
    _finish(figure, filename, show)


def reconstruct(encoder, decoder, x, logits=False, batch_size=128):
    """Each digit of `x` decoded from its latent mean: the VAE's reconstruction, as pixels."""
    z_mean, _, _ = encoder.predict(x, batch_size=batch_size, verbose=0)
    return to_pixels(decoder.predict(z_mean, batch_size=batch_size, verbose=0), logits)


def plot_reconstructions(
    encoder, decoder, x_test, filename, n=10, logits=False, show=False, image_shape=None
):
    """Draws the first `n` test digits above their reconstructions.

    A reconstruction is the decoder's output at the digit's latent mean
    (no sampling noise), so the picture shows what the code keeps of a digit.
    `image_shape` is that of flattened digits (see `as_images`).

    Returns:
        `(originals, reconstructions)`: the two rows of pixels, `(n, ...)` each.

    Example:

    >>> plot_reconstructions(encoder, decoder, x_test, "reconstructions.png")
    """
    originals = np.asarray(x_test[:n], dtype=np.float32)
    reconstructions = reconstruct(encoder, decoder, originals, logits)
    _draw_rows(
        [originals, reconstructions],
        ["test digits", "reconstructions"],
        filename,
        show,
        image_shape,
    )
    return originals, reconstructions


def interpolate(encoder, decoder, start, end, steps=10, logits=False):
    """Digits decoded at `steps` evenly spaced points from `start`'s latent mean to `end`'s.

    Returns:
        `(z, digits)`: the `(steps, latent_dim)` points and their pixels.
    """
    z_mean, _, _ = encoder.predict(np.stack([start, end]).astype(np.float32), verbose=0)
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    z = (1.0 - weights) * z_mean[0] + weights * z_mean[1]
    return z, to_pixels(decoder.predict(z, verbose=0), logits)


def plot_interpolation(
    encoder, decoder, start, end, filename, steps=10, logits=False, show=False, image_shape=None
):
    """Draws `start`, the digits along the line between the two latent means, and `end`.

    `image_shape` is that of flattened digits (see `as_images`).

    Returns:
        The `steps` decoded digits, pixel values in [0, 1].

    Example:

    >>> plot_interpolation(encoder, decoder, x_test[0], x_test[1], "interpolation.png")
    """
    _, digits = interpolate(encoder, decoder, start, end, steps, logits)
    ends = np.zeros((steps, *np.shape(start)), dtype=np.float32)
    ends[0], ends[-1] = start, end
    _draw_rows([ends, digits], ["test digits", "interpolation"], filename, show, image_shape)
    return digits


def grid_shape(n):
    """`(rows, columns)` for `n` digits: square for a square (16: 4x4), else 10 wide (50: 5x10)."""
    root = math.isqrt(n)
    if root * root == n:
        return root, root
    columns = min(n, 10)
    return math.ceil(n / columns), columns


def sample_prior(decoder, n, seed=None, logits=False, batch_size=128):
    """Decodes `n` draws of z from the prior N(0, I).

    Args:
        decoder: a model mapping z to digits.
        n: number of digits.
        seed: integer seed of the draws (equal seeds, equal digits), or `None`.
        logits: the decoder outputs logits; return their sigmoid.
        batch_size: prediction batch size.

    Returns:
        `(z, digits)`: the `(n, latent_dim)` draws and the decoded pixels in [0, 1].
    """
    import keras

    z = keras.random.normal((n, decoder.input_shape[-1]), seed=seed)
    z = keras.ops.convert_to_numpy(z)
    return z, to_pixels(decoder.predict(z, batch_size=batch_size, verbose=0), logits)


def plot_digits(digits, filename, title=None, show=False, image_shape=None):
    """Draws digits as one grid picture (see `grid_shape`), white on black."""
    rows, columns = grid_shape(len(digits))
    figure, axes = plt.subplots(figsize=(columns, rows + (0.4 if title else 0)))
    axes.imshow(tile(digits, rows, columns, image_shape), cmap="gray", vmin=0.0, vmax=1.0)
    axes.axis("off")
    if title:
        axes.set_title(title)
    _finish(figure, filename, show)


def plot_samples(decoder, n, filename, seed=None, logits=False, show=False, image_shape=None):
    """Generates `n` digits from the prior N(0, I) and draws them as a grid.

    50 digits make a 5x10 grid, a square number a square one.

    Args:
        decoder: a model mapping z to digits (after training, the one a
            builder returned).
        n: number of digits.
        filename: the picture to write.
        seed: integer seed of the draws, or `None`.
        logits: the decoder outputs logits (`build_conv_vae`): draw their sigmoid.
        show: also open the figure in a window.
        image_shape: `(height, width, channels)` of flat outputs (see `as_images`).

    Returns:
        The generated digits, pixel values in [0, 1].

    Example:

    >>> plot_samples(decoder, 50, "samples.png", seed=1)
    """
    _, digits = sample_prior(decoder, n, seed=seed, logits=logits)
    plot_digits(digits, filename, show=show, image_shape=image_shape)
    return digits


def save_gif(frames, filename, duration=200):
    """Joins pictures into an animated GIF that loops forever.

    Identical consecutive pictures become one frame: Pillow merges them and
    adds up their durations.

    Args:
        frames: the picture files, in order.
        filename: the GIF to write.
        duration: milliseconds per frame.

    Returns:
        `filename`.
    """
    from PIL import Image

    images = []
    for frame in frames:
        with Image.open(frame) as image:
            images.append(image.convert("RGB"))
    images[0].save(filename, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return filename


def plot_architecture(encoder, decoder, prefix):
    """Draws the diagrams `<prefix>_encoder.png`, `<prefix>_decoder.png` and `<prefix>.png`.

    Needs Graphviz's `dot`; without it, one warning instead of a crash.

    Returns:
        The files written.
    """
    import keras

    # The VAE drawn as the original examples built it: decoder(encoder(x)[2]).
    inputs = [keras.Input(shape=t.shape[1:], name=t.name) for t in encoder.inputs]
    z = encoder(inputs if len(inputs) > 1 else inputs[0])[2]
    # A conditional decoder also takes the encoder's other input, the label.
    outputs = decoder([z, *inputs[1:]] if len(inputs) > 1 else z)
    vae = keras.Model(inputs, outputs, name=os.path.basename(prefix))
    written = []
    for model, filename in [
        (encoder, f"{prefix}_encoder.png"),
        (decoder, f"{prefix}_decoder.png"),
        (vae, f"{prefix}.png"),
    ]:
        try:
            keras.utils.plot_model(model, to_file=filename, show_shapes=True, show_layer_names=True)
        except ImportError as error:
            warnings.warn(
                f"model diagrams skipped: {str(error).splitlines()[0]} "
                "(install Graphviz, e.g. apt-get install graphviz, and pydot)",
                stacklevel=2,
            )
            break
        written.append(filename)
    return written


# Pictures of scores (examples/score.py): how the data's scores fall against
# the reference's, and the images a score finds most unusual.


def plot_score_histograms(reference, scores, filename, show=False):
    """One panel per score: the reference's histogram against the data's.

    Args:
        reference: `{name: array}` of the in-distribution images.
        scores: `{name: array}` of the images scored, the same names.
    """
    names = list(scores)
    columns = min(len(names), 3)
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names):
        both = np.concatenate([reference[name], scores[name]])
        both = both[np.isfinite(both)]
        # The central 99.8% of both: one wild score would squash the rest to a bar.
        low, high = np.quantile(both, [0.001, 0.999]) if len(both) else (0, 1)
        bins = np.linspace(low, high if high > low else low + 1, 60)
        axis.hist(
            np.clip(reference[name], low, high), bins, alpha=0.6, density=True, label="reference"
        )
        axis.hist(np.clip(scores[name], low, high), bins, alpha=0.6, density=True, label="data")
        axis.set_title(name)
        axis.legend()
    for axis in list(axes.flat)[len(names) :]:
        axis.axis("off")
    figure.tight_layout()
    _finish(figure, filename, show)


def plot_roc(reference, scores, filename, show=False):
    """The ROC curve of every score, the data's images the positives (scikit-learn's roc_curve)."""
    from sklearn.metrics import auc, roc_curve

    figure, axis = plt.subplots(figsize=(5, 5))
    labels = None
    for name in scores:
        values = np.nan_to_num(
            np.concatenate([reference[name], scores[name]]),
            nan=np.inf,
            posinf=np.finfo(np.float64).max,
            neginf=np.finfo(np.float64).min,
        )
        labels = np.concatenate([np.zeros(len(reference[name])), np.ones(len(scores[name]))])
        fpr, tpr, _ = roc_curve(labels, values)
        axis.plot(fpr, tpr, label=f"{name} (AUROC {auc(fpr, tpr):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set_xlabel("false positive rate (reference flagged)")
    axis.set_ylabel("true positive rate (data flagged)")
    axis.legend(loc="lower right", fontsize="small")
    _finish(figure, filename, show)


def plot_most_unusual(images, values, filename, name, n=32, image_shape=None, show=False):
    """The `n` images with the highest `values`, each titled with its score."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(-np.nan_to_num(values, nan=np.inf))[:n]
    pictures = as_images(np.asarray(images)[order], image_shape)
    columns = min(8, len(order))
    rows = math.ceil(len(order) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, picture, value in zip(axes.flat, pictures, values[order]):
        axis.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0)
        axis.set_title(f"{value:.4g}", fontsize=8)
    figure.suptitle(f"the {len(order)} most unusual by {name}")
    _finish(figure, filename, show)
