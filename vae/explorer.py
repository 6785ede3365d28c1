"""explorer.html: a trained VAE's latent space, explored by hand in a browser.

One self-contained page, no server and no network (it opens from `file://`):

- `#latent`: the plane of the test images' latent means, a dot each,
  coloured by class;
- `#decoded`: a canvas of the image's own size, showing the image decoded at
  the point under the cursor, and `#z`: that point;
- a click on a dot shows its test image, its reconstruction, its class and
  its z.

The decoder reaches the page as images decoded beforehand at every point of
a grid over the plane, tiled into one PNG (an atlas); the cursor picks the
nearest grid point, and `#z` names exactly the z that was decoded there. That
works for every model and every backend, where running the decoder's weights
in JavaScript would need a JavaScript version of each layer
(benchmarks/explorer.py measures the two).

With more than two latent dimensions, the plane is the one through the mean
of the latent means spanned by their two principal directions, and every
other coordinate follows the plane.

Example (in a notebook, the page shows inline):

>>> page = explore(encoder, decoder, x_test, y_test)
>>> page.save("explorer.html")
>>> page
"""

import base64
import html
import io
import json
import math
from importlib import resources

import numpy as np
from PIL import Image

from vae.atomic import atomic_write
from vae.plotting import as_images, tile, to_pixels

# The test images on the page: the first ones of the test set, as many as
# 2,000 MNIST digits' pixel values allow (127 RGB photographs of 64x64). With
# their reconstructions they are the larger part of the file: about 2 of the
# 2.7 MB of MNIST's page.
DOTS = 2000
DOT_VALUES = DOTS * 28 * 28
# Pixel values in the atlas of decoded images, which sets the grid: 56 x 56
# points for MNIST's 784 pixels, 14 x 14 for 64x64 RGB photographs.
ATLAS_VALUES = 2_500_000
MOST_GRID_POINTS = 64
# Decimals of the z values on the page: the atlas is decoded at z rounded to
# them, so that the text names exactly the point decoded.
DECIMALS = 4
# matplotlib's tab10 and tab20, as the static scatter picture colours classes.
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip
TAB20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
         "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
         "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"]  # fmt: skip


def latent_plane(z_mean):
    """The plane the page shows: `(origin, directions, explained)`.

    For two latent dimensions it is the latent plane itself (origin 0, the
    unit directions, all the variance). Beyond, it goes through the mean of
    the latent means along their two principal directions (the right singular
    vectors of the centred means), and `explained` is their share of the
    variance.
    """
    z_mean = np.asarray(z_mean, dtype=np.float64)
    dimensions = z_mean.shape[1]
    if dimensions == 2:
        return np.zeros(2), np.eye(2), 1.0
    origin = z_mean.mean(axis=0)
    _, singular, directions = np.linalg.svd(z_mean - origin, full_matrices=False)
    variance = singular**2
    return origin, directions[:2], float(variance[:2].sum() / variance.sum())


def grid_points(image_values):
    """Points per side of the grid of decoded images, for images of `image_values` values."""
    return int(np.clip(math.isqrt(ATLAS_VALUES // image_values), 8, MOST_GRID_POINTS))


def _png(images):
    """8-bit images `(count, height, width[, 3])` tiled into one PNG: `(data URI, columns)`."""
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    buffer = io.BytesIO()
    Image.fromarray(tile(images, rows, columns)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), columns


def _bytes(pixels, image_shape):
    """Pixel values in [0, 1] as 8-bit images, each value rounded to the nearest level."""
    images = as_images(pixels, image_shape)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


class Explorer:
    """The page of one model, as HTML: `save(path)` writes it, and a notebook shows it inline."""

    def __init__(self, page):
        self.html = page

    def save(self, path):
        """Writes the page to `path` atomically (never half a file) and returns `path`."""

        def write(temporary):
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(self.html)

        atomic_write(path, write, suffix=".html")
        return path

    def _repr_html_(self):
        # An iframe keeps the page's script and styles apart from the notebook's.
        return (
            f'<iframe srcdoc="{html.escape(self.html)}" '
            'style="width: 100%; height: 820px; border: 0"></iframe>'
        )


def explore(
    encoder,
    decoder,
    x,
    y=None,
    logits=False,
    image_shape=None,
    class_names=None,
    title="The latent space",
    dots=None,
    grid=None,
    batch_size=128,
):
    """The explorer page of a trained VAE (see the module's docstring).

    Args:
        encoder: a model mapping images to `[z_mean, z_log_var, z]`.
        decoder: a model mapping z to images (pixel values in [0, 1], or
            logits with `logits=True`).
        x: test images, as the encoder takes them, with values in [0, 1];
            the first `dots` are shown.
        y: their integer classes, or `None` (one colour).
        logits: the decoder outputs logits (`build_conv_vae`).
        image_shape: `(height, width, channels)` of flat images (an MLP's).
        class_names: the classes' names (default: their numbers).
        title: the page's heading.
        dots: test images on the page (default: `DOTS`, fewer for images
            larger than MNIST's, see `DOT_VALUES`).
        grid: points per side of the grid of decoded images (default: as
            many as `ATLAS_VALUES` allows, see `grid_points`).
        batch_size: prediction batch size.

    Returns:
        An `Explorer`.
    """
    x = np.asarray(x)
    x = x[: dots or min(DOTS, max(1, DOT_VALUES // x[0].size))]
    z_mean = np.asarray(encoder.predict(x, batch_size=batch_size, verbose=0)[0], np.float64)
    dimensions = z_mean.shape[1]
    origin, directions, explained = latent_plane(z_mean)
    on_plane = (z_mean - origin) @ directions.T
    low, high = on_plane.min(axis=0), on_plane.max(axis=0)
    pad = 0.05 * np.maximum(high - low, 1e-6)
    low, high = low - pad, high + pad

    images = _bytes(x, image_shape)
    height, width = images.shape[1:3]
    grid = grid or grid_points(images[0].size)
    a = np.linspace(low[0], high[0], grid)
    b = np.linspace(high[1], low[1], grid)  # row 0 at the top
    plane = np.stack([np.tile(a, grid), np.repeat(b, grid)], axis=1)
    grid_z = np.round(origin + plane @ directions, DECIMALS)

    def decode(z):
        decoded = decoder.predict(z.astype(np.float32), batch_size=batch_size, verbose=0)
        return _bytes(to_pixels(decoded, logits), image_shape)

    atlas, _ = _png(decode(grid_z))
    sheet, sheet_columns = _png(images)
    dots_z = np.round(z_mean, DECIMALS)  # decoded where the page says
    reconstructions, _ = _png(decode(dots_z))
    if dimensions == 2:
        axis_names = ["z[0]", "z[1]"]
        about = "Each dot is a test image at its latent mean."
    else:
        axis_names = ["the first principal direction", "the second"]
        about = (
            f"The latent space has {dimensions} dimensions: the plane shown goes through "
            "the mean of the test images' latent means, spanned by their two principal "
            f"directions ({explained:.0%} of their variance), and every other coordinate "
            "follows the plane. Each dot is a test image's latent mean projected on it."
        )
    about += f" Hover to decode; click a dot to see its image. {len(x)} test images."
    labels = None if y is None else np.asarray(y)[: len(x)].astype(int)
    classes = 0 if labels is None else int(labels.max()) + 1
    data = {
        "width": int(width),
        "height": int(height),
        "grid": grid,
        "extent": [float(low[0]), float(high[0]), float(low[1]), float(high[1])],
        "grid_z": grid_z.tolist(),
        "decimals": DECIMALS,
        "atlas": atlas,
        "images": sheet,
        "reconstructions": reconstructions,
        "sheet_columns": sheet_columns,
        "dots": np.round(on_plane, 3).tolist(),
        "dots_z": dots_z.tolist(),
        "labels": None if labels is None else labels.tolist(),
        "class_names": [
            str(class_names[i]) if class_names is not None else str(i) for i in range(classes)
        ],
        "palette": TAB10 if classes <= 10 else TAB20,
        "axis_names": axis_names,
        "about": about,
    }
    # "</" inside the JSON would end its <script> element early.
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    template = resources.files("vae").joinpath("explorer.html").read_text(encoding="utf-8")
    page = template.replace("{{TITLE}}", html.escape(title)).replace("{{DATA}}", payload)
    return Explorer(page)
