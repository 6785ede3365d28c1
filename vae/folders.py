"""Folders of images: listed, decoded with Pillow, split, and streamed a batch at a time.

A folder holds PNG or JPEG files (``.png``, ``.jpg``, ``.jpeg`` in any case),
one subfolder per class or all in the folder itself (no labels); hidden files
and folders and files of other kinds (``README.txt``) are passed over.

Every Pillow mode comes out as 8-bit grey or RGB pixels: 1, L, LA (alpha
dropped), 16-bit grey (I;16, scaled, not clipped), P and PA (grey when every
colour of the palette image is), RGBA, CMYK and YCbCr JPEGs, and JPEGs turned
by their EXIF orientation as a viewer shows them.

:func:`read_images` decodes a list of files into one array
(``vae.data.load_images``); :class:`ImageFolder`, a ``keras.utils.PyDataset``,
decodes one batch at a time, so memory stays bounded whatever the folder's
size. :func:`split_folder` draws the held-out files without reading a pixel,
the same draw for both.
"""

import os
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vae.data_error import DataError, data_error, one_line
from vae.pydataset import ShuffledBatches, lazy_py_dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ANY_FIX = (
    "pass --data PATH to a Keras-layout .npz, a folder of IDX files or a folder of PNG/JPEG images"
)
SIZE_FIX = "pass --image-size H W (image_size=(h, w)) to resize every image to one size"
_IMAGE_FIX = "replace or remove the file"
_SKIP_FIX = "replace or remove the file, or pass --skip-bad-images to pass over such files"
_GREY_MODES = ("1", "L", "LA", "La", "F")
# EXIF's orientation tag, and its values that turn the stored image a quarter.
_ORIENTATION = 0x0112
_TURNED = (5, 6, 7, 8)


def image_files(folder):
    """The image files under `folder` in sorted order, their labels and the class names.

    Returns:
        ``(files, labels, class_names)``: ``Path`` objects; one class index per
        file and the sorted subfolder names, or ``None`` and ``None`` for a flat
        folder.

    Raises:
        DataError: no images, or images both in the folder and in subfolders.
    """
    files, classes = [], []
    # os.walk rather than Path.rglob: it lists names without a stat per file,
    # which counts with 100,000 images. Sorted in place, so that every machine
    # and file system gives the same order (and the seed the same split).
    for root, dirs, names in os.walk(folder):
        # Hidden ones are tools' (.git, .ipynb_checkpoints, macOS's ._x.png), not images.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        top = os.path.relpath(root, folder).split(os.sep)[0]
        for name in sorted(names):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                files.append(Path(root, name))
                classes.append(None if top == os.curdir else top)
    if not files:
        raise data_error(
            folder,
            "no images (.png, .jpg, .jpeg), IDX files or mnist.npz in the folder or its subfolders",
            ANY_FIX,
        )
    if classes[0] is None:  # os.walk lists the folder's own files first
        if classes[-1] is not None:
            subfolder = next(c for c in classes if c is not None)
            raise data_error(
                folder,
                f"holds images both in itself ({files[0].name}) and in its subfolder {subfolder}",
                "put each class's images in a subfolder of its own, or all images in "
                "the folder itself for no labels",
            )
        return files, None, None
    class_names = tuple(sorted(set(classes)))
    index = {name: i for i, name in enumerate(class_names)}
    return files, [index[name] for name in classes], class_names


class Split(NamedTuple):
    """The files of a folder, drawn into a training and a held-out part.

    Attributes:
        train_files, test_files: ``Path`` lists, each in the draw's order.
        train_labels, test_labels: int64 class indices, or ``None``.
        class_names: the sorted subfolder names, or ``None``.
        files: every file, in the folder's sorted order (errors name the
            first of a kind in it).
    """

    train_files: list
    train_labels: "np.ndarray | None"
    test_files: list
    test_labels: "np.ndarray | None"
    class_names: "tuple[str, ...] | None"
    files: list


def split_folder(folder, validation_split=0.1, seed=None):
    """Draws a seeded random `validation_split` of a folder's images as the held-out part.

    Only names are listed: no image is opened. At least one image lands on
    each side. ``vae.data.load_images`` and :class:`ImageFolder` use this
    draw, so both give the same images in the same order.

    Raises:
        DataError: as :func:`image_files`, or the folder holds one image only.
    """
    files, labels, class_names = image_files(folder)
    n = len(files)
    if n < 2:
        raise data_error(
            folder,
            f"holds only one image ({files[0]}); at least 2 are needed, one "
            "to train on and one to test",
            "add images to the folder",
        )
    n_test = min(max(round(n * validation_split), 1), n - 1)
    order = np.random.default_rng(0 if seed is None else seed).permutation(n)
    y = None if labels is None else np.asarray(labels, np.int64)[order]
    drawn = [files[i] for i in order]
    return Split(
        drawn[n_test:],
        None if y is None else y[n_test:],
        drawn[:n_test],
        None if y is None else y[:n_test],
        class_names,
        files,
    )


def image_pixels(image, size):
    """uint8 pixels (h, w) if grey or (h, w, 3) if colour of an open Pillow image, resized."""
    from PIL import Image, ImageOps

    image.load()  # decode now: a truncated file fails here, in the caller's try
    # As a viewer shows it: a camera's JPEG is stored sideways with an EXIF
    # orientation tag.
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode.startswith("I"):
        # 16-bit grey PNG: convert("L") would clip at 255 instead of scaling.
        levels = np.asarray(image).astype(np.float64) / 257
        image = Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8))
    elif mode in _GREY_MODES:
        image = image.convert("L")  # alpha dropped
    elif mode in ("P", "PA"):
        # Through RGBA: Pillow then honours a transparent palette entry.
        image = image.convert("RGBA").convert("RGB")
        rgb = np.asarray(image)
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            image = Image.fromarray(np.ascontiguousarray(rgb[..., 0]))  # a grey palette
    elif mode != "RGB":
        image = image.convert("RGB")  # RGBA (alpha dropped), CMYK, YCbCr, ...
    if size is not None and image.size != (size[1], size[0]):  # Pillow's sizes are (w, h)
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image)


def read_image(path, size, fix=_IMAGE_FIX):
    """uint8 pixels of one file, as :func:`image_pixels`; a DataError naming it if unreadable."""
    from PIL import Image  # Pillow (a dependency of matplotlib): only image folders need it

    try:
        with Image.open(path) as image:
            return image_pixels(image, size)
    except Exception as err:
        # Pillow raises UnidentifiedImageError, OSError ("image file is
        # truncated"), SyntaxError, DecompressionBombError, ...: all mean
        # "this file is not a usable image".
        raise data_error(path, f"cannot read image ({one_line(err)})", fix) from err


def _size_error(path, shape, first, first_shape):
    return data_error(
        path,
        f"image is {shape[0]}x{shape[1]} pixels (height x width) but "
        f"{first} is {first_shape[0]}x{first_shape[1]}",
        SIZE_FIX,
    )


def read_images(files, row, image_size):
    """float32 (n, h, w, c) of `files`, file i in row `row[i]`; c 3 if any is in colour."""
    pixels, first = [], None
    for path in files:
        a = read_image(path, image_size)
        if first is None:
            first = path, a.shape[:2]
        elif a.shape[:2] != first[1]:
            raise _size_error(path, a.shape, *first)
        pixels.append(a)
    channels = 3 if any(a.ndim == 3 for a in pixels) else 1
    x = np.empty((len(pixels), *first[1], channels), np.float32)
    for i, a in zip(row, pixels):
        # A grey image in an RGB set: its level in R, G and B, as Pillow's
        # convert("RGB") does.
        x[i] = a if a.ndim == 3 else a[..., None]
    x /= 255
    return x


def folder_image_shape(files, image_size=None, skip_bad=False):
    """``(h, w, c)`` of a list of files from their headers, and the files that are images.

    Pillow reads a file's header without decoding its pixels, so this costs
    a file open per image. ``c`` is 3 if any image is in colour (a palette
    image is decoded to tell), else 1; without `image_size` every image must
    have the first one's size.

    Returns:
        ``((h, w, c), usable, skipped)``: the files that Pillow opens, and
        those it does not (always empty unless `skip_bad`).

    Raises:
        DataError: a file is no image (unless `skip_bad`), or sizes differ.
    """
    from PIL import Image

    usable, skipped, first, colour = [], [], None, False
    for path in files:
        try:
            with Image.open(path) as image:
                mode, width, height = image.mode, image.width, image.height
                if image.getexif().get(_ORIENTATION) in _TURNED:  # shown a quarter turned
                    width, height = height, width
                if not colour and mode in ("P", "PA"):
                    colour = image_pixels(image, None).ndim == 3
        except Exception as err:
            if not skip_bad:
                raise data_error(path, f"cannot read image ({one_line(err)})", _SKIP_FIX) from err
            skipped.append(path)
            continue
        if mode not in ("P", "PA"):
            colour = colour or not (mode in _GREY_MODES or mode.startswith("I"))
        if first is None:
            first = path, (height, width)
        elif image_size is None and (height, width) != first[1]:
            raise _size_error(path, (height, width), *first)
        usable.append(path)
    if first is None:
        raise data_error(files[0].parent, "no file of the folder is a readable image", _IMAGE_FIX)
    height, width = image_size or first[1]
    return (height, width, 3 if colour else 1), usable, skipped


class FolderScan(NamedTuple):
    """A folder's files drawn into two parts, and the shape their images come out as.

    Attributes:
        split: the :class:`Split`, files that Pillow cannot open left out.
        image_shape: ``(h, w, c)``, as :func:`folder_image_shape`.
        skipped: the files left out (only with ``skip_bad``).
    """

    split: Split
    image_shape: tuple
    skipped: list


def scan_folder(folder, image_size=None, validation_split=0.1, seed=None, skip_bad=False):
    """Lists, draws and checks a folder's images from their headers: no pixel is decoded.

    What a run over a folder larger than memory knows before training: the
    draw of :func:`split_folder`, the shape of :func:`folder_image_shape`,
    and the files passed over with `skip_bad`.

    Raises:
        DataError: as :func:`split_folder` and :func:`folder_image_shape`.
    """
    split = split_folder(folder, validation_split, seed)
    image_shape, _, skipped = folder_image_shape(split.files, image_size, skip_bad)
    if skipped:
        bad = set(skipped)

        def kept(files, labels):
            keep = [i for i, path in enumerate(files) if path not in bad]
            return [files[i] for i in keep], None if labels is None else labels[keep]

        split = Split(
            *kept(split.train_files, split.train_labels),
            *kept(split.test_files, split.test_labels),
            split.class_names,
            [path for path in split.files if path not in bad],
        )
        if not split.train_files or not split.test_files:
            raise data_error(
                folder,
                f"after passing over {len(skipped)} unreadable files, no image is left "
                "to train on or to test",
                _IMAGE_FIX,
            )
    return FolderScan(split, image_shape, skipped)


class _ImageFolder(ShuffledBatches):
    """Batches of images decoded from their files a batch at a time: memory bounded by the batch.

    A ``keras.utils.PyDataset``: give it to ``fit`` in place of ``x`` (without
    ``batch_size``). Each batch opens, decodes and resizes its files with
    Pillow (see :func:`image_pixels`), as float32 ``(batch, h, w, c)`` in
    [0, 1]; grey images in a colour set get their level in R, G and B. With
    ``workers`` > 1, that many threads decode batches ahead of the model
    (Pillow decodes without holding Python's lock).

    With ``shuffle``, each epoch reads the files in a new order, a function
    of ``(seed, epoch)`` alone, so a seeded run repeats. Without it, the
    batches follow ``files``: the same images in the same order as
    ``vae.data.load_images`` gives for the same split.

    Args:
        files: the image files, e.g. ``split_folder(...).train_files``.
        batch_size: images per batch (the last batch may be smaller).
        image_size: ``(height, width)`` to resize to, or ``None`` (the
            images must then share one size).
        seed: integer seed of the shuffling, or ``None`` for a fresh one.
        shuffle: reshuffle the files every epoch.
        skip_bad: pass over files that cannot be read (corrupt, truncated,
            not images) and count them in :attr:`skipped`, instead of raising
            ``DataError`` naming the first.
        image_shape: ``(h, w, c)`` when known (skips the header pass of
            :func:`folder_image_shape`).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    Attributes:
        image_shape: ``(h, w, c)`` of every batch's images.
        skipped: the files passed over so far, in the order met.
        error: the ``DataError`` of the first unreadable file met without
            ``skip_bad``, or ``None``: what TensorFlow's ``fit`` wraps in an
            ``InvalidArgumentError``.

    Example:

    >>> split = split_folder("~/photos", validation_split=0.1, seed=1)
    >>> train = ImageFolder(split.train_files, batch_size=64, image_size=(64, 64), seed=1)
    >>> vae.fit(train, epochs=10)
    """

    def __init__(
        self,
        files,
        batch_size,
        image_size=None,
        seed=None,
        shuffle=True,
        skip_bad=False,
        image_shape=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.skipped = []
        # The first unreadable file's error: TensorFlow's input pipeline
        # wraps what a PyDataset raises, and the caller wants this line.
        self.error = None
        if image_shape is None:
            image_shape, files, self.skipped = folder_image_shape(files, image_size, skip_bad)
        self.files = [Path(f) for f in files]
        self.image_shape = tuple(image_shape)
        self.skip_bad = skip_bad
        self._lock = threading.Lock()
        self._start_batches(len(self.files), batch_size, seed, shuffle)

    def __getitem__(self, index):
        chosen = self._batch(index)
        height, width, channels = self.image_shape
        x = np.empty((len(chosen), height, width, channels), np.float32)
        kept = 0
        for i in chosen:
            path = self.files[i]
            try:
                a = read_image(path, (height, width), _SKIP_FIX)
            except DataError as error:
                if not self.skip_bad:
                    self.error = self.error or error
                    raise
                with self._lock:  # once, though every epoch meets it
                    if path not in self.skipped:
                        self.skipped.append(path)
                continue
            if a.ndim == 3 and channels == 1:  # a file changed since the header pass
                raise data_error(path, "is in colour but the folder's images are grey", _IMAGE_FIX)
            x[kept] = a if a.ndim == 3 else a[..., None]
            kept += 1
        if kept == 0:
            raise data_error(
                self.files[chosen[0]].parent,
                f"no image of batch {index} could be read ({len(chosen)} files)",
                _IMAGE_FIX,
            )
        x = x[:kept]
        x /= 255
        return (x,)


def __getattr__(name):
    if name == "ImageFolder":
        return lazy_py_dataset(globals(), name, _ImageFolder)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
