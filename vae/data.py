"""Training images: MNIST, Fashion-MNIST, a Keras-layout ``.npz`` or a folder of images, validated.

:func:`load_images` reads them as float32 ``(n, h, w, c)`` arrays in an
:class:`Images`:

- ``path=None``: MNIST as :func:`load_mnist` reads it (``VAE_DATA``, the Keras
  download, else the bundled sample), or Fashion-MNIST from
  ``keras.datasets.fashion_mnist`` (no sample of it is bundled);
- a Keras-layout ``.npz`` of any image size, grey or colour, with or without
  labels (``x_train``, ``x_test``, optionally ``y_train``, ``y_test``);
- a folder of the four IDX files (MNIST and Fashion-MNIST use the same names);
- a folder of PNG or JPEG images, one subfolder per class or flat (no labels),
  read with Pillow; a seeded random fraction is held out for testing.

Each source has its module: ``vae.mnist`` (IDX files and ``mnist.npz``),
``vae.folders`` (image folders, and ``ImageFolder`` for folders larger than
memory), ``vae.binarization``; this module gathers them, and its names are
the ones to import.

A path named by the user that is missing or malformed raises
:class:`DataError` instead of falling back: training on other data than the
user asked for, without a word, would be worse than stopping.
"""

import numbers
import operator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vae.binarization import BINARIZATIONS, binarize
from vae.data_error import DataError, data_error, one_line
from vae.folders import ANY_FIX, IMAGE_SUFFIXES, SIZE_FIX, image_files, read_images, split_folder
from vae.mnist import (
    _KEYS,
    IDX_FILES,
    SAMPLE_PATH,
    _read_npz,
    _validated,
    load_mnist,
    load_raw_mnist,
    read_idx,
)

__all__ = [
    "DataError",
    "IDX_FILES",
    "SAMPLE_PATH",
    "load_mnist",
    "load_raw_mnist",
    "read_idx",
    "DATASETS",
    "Images",
    "load_images",
    "load_images_to_score",
    "BINARIZATIONS",
    "binarize",
    "DynamicBinarization",
    "ImageFolder",
    "split_folder",
]


# More than MNIST. Every source of load_images ends as float32 (n, h, w, c)
# images in [0, 1], so a model needs to know only their shape.

DATASETS = ("mnist", "fashion_mnist")

# The name of each class index, in label order; Fashion-MNIST's as its authors
# (Zalando Research) name them.
_CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}
# A label beyond this is an ID, not a class index: naming every class up to it
# would make millions of names.
_MAX_CLASSES = 1 << 16
_NPZ_FIX = (
    "save x_train and x_test as (n, h, w) or (n, h, w, c) arrays (c 1 or 3) of uint8 or "
    "of floats in [0, 1], with optional y_train and y_test integer labels"
)


class Images(NamedTuple):
    """Training and test images, with their labels when the source has them.

    Attributes:
        x_train: float32 images in [0, 1], shape ``(n, h, w, c)``, ``c`` 1
            (grey) or 3 (RGB).
        y_train: int64 class indices, shape ``(n,)``; ``None`` when the source
            has no labels.
        x_test: the held-out images, as ``x_train``.
        y_test: their labels, as ``y_train``.
        class_names: the name of each class index (``class_names[y]``);
            ``None`` without labels.

    Example:

    >>> data = load_images("~/clothes")
    >>> data.image_shape, data.class_names
    ((64, 64, 3), ('coat', 'dress', 'shirt'))
    """

    x_train: np.ndarray
    y_train: "np.ndarray | None"
    x_test: np.ndarray
    y_test: "np.ndarray | None"
    class_names: "tuple[str, ...] | None"

    @property
    def image_shape(self):
        """``(h, w, c)`` of every image: the input shape of a model."""
        return tuple(self.x_train.shape[1:])


def load_images(path=None, dataset="mnist", image_size=None, validation_split=0.1, seed=None):
    """Loads training and test images from MNIST, Fashion-MNIST, an ``.npz`` or an image folder.

    Keras is imported only for a download (``path=None``), so a path can be
    checked with this function before Keras starts (seconds saved on a path
    that was never going to work).

    Args:
        path: where the images are:

            - ``None``: ``dataset`` from Keras. ``"mnist"`` exactly as
              :func:`load_mnist` with no path (``VAE_DATA``, else the Keras
              download, else the bundled sample with a warning);
              ``"fashion_mnist"`` from ``keras.datasets.fashion_mnist``
              (``VAE_DATA`` names MNIST and is not used, and no sample is
              bundled);
            - a Keras-layout ``.npz`` (or a folder holding ``mnist.npz``):
              ``x_train`` and ``x_test`` of shape ``(n, h, w)`` or
              ``(n, h, w, c)`` with ``c`` 1 or 3, uint8 (0..255) or floats in
              [0, 1]; ``y_train`` and ``y_test`` optional (both or neither),
              one integer label per image (``(n,)`` or Keras's CIFAR
              ``(n, 1)``);
            - a folder of the four IDX files of MNIST or Fashion-MNIST (they
              share the file names; gzipped or raw): 28x28 grey images;
            - a folder of PNG or JPEG images, read with Pillow in sorted path
              order: one subfolder per class (the class indices follow the
              sorted subfolder names, as in
              ``keras.utils.image_dataset_from_directory``), or all images in
              the folder itself for no labels. Hidden files and folders
              (``.name``) are skipped. Grey images give one channel; if any
              image is in colour, all become RGB. Alpha is dropped, and
              palette images count as grey when every colour of theirs is.
        dataset: one of :data:`DATASETS`. It picks the download when ``path``
            is ``None``, and the class names of labelled IDX and ``.npz`` data
            (``"0"``..``"9"`` or Fashion-MNIST's ten); an ``.npz`` whose labels
            go beyond 9 gets ``"0"``, ``"1"``, ... up to its highest label.
        image_size: ``(height, width)`` to resize every image to (Pillow's
            bilinear filter), whatever the source; ``None`` keeps the size,
            and the images of a folder must then all have one size.
        validation_split: for an image folder, the fraction of its images
            held out as the test set: a seeded random draw, at least one image
            on each side. Sources with their own test set ignore it.
        seed: seed of that draw; ``None`` means 0, so that runs compare.

    Returns:
        An :class:`Images`: float32 images ``(n, h, w, c)`` in [0, 1], int64
        labels or ``None``, and the class names or ``None``. The test images
        of a folder come in the draw's random order, the training images
        too.

    Raises:
        DataError: the path is missing, or holds no usable images (an empty
            folder, an image that cannot be read, images of several sizes
            without ``image_size``, a malformed ``.npz``, pixel values out of
            range), or Fashion-MNIST cannot be downloaded. The one-line
            message names the file, the problem and the fix.
        ValueError: ``dataset``, ``image_size`` or ``validation_split`` is not
            valid (a mistake in the calling code, not in the data).

    Example:

    >>> data = load_images("~/fashion-mnist", dataset="fashion_mnist")
    >>> data.x_train.shape, data.class_names[data.y_train[0]]
    ((60000, 28, 28, 1), 'Ankle boot')
    >>> faces = load_images("~/faces", image_size=(64, 64), validation_split=0.2)
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    image_size = _checked_size(image_size)
    if not (isinstance(validation_split, numbers.Real) and 0 < validation_split < 1):
        raise ValueError(
            f"validation_split must be a fraction between 0 and 1 (exclusive), "
            f"not {validation_split!r}"
        )
    if path is None:
        if dataset == "mnist":
            (x_train, y_train), (x_test, y_test) = load_mnist(None)
        else:
            (x_train, y_train), (x_test, y_test) = _scaled(_keras_fashion_mnist())
        return Images(
            _resized(x_train, image_size),
            y_train,
            _resized(x_test, image_size),
            y_test,
            _CLASS_NAMES[dataset],
        )
    path = Path(path).expanduser()
    if not path.exists():
        raise data_error(path, "no such file or directory", ANY_FIX)
    if path.is_dir():
        if (path / "mnist.npz").is_file():
            path = path / "mnist.npz"
        elif not is_image_folder(path):
            (x_train, y_train), (x_test, y_test) = _scaled(load_raw_mnist(path))
            return Images(
                _resized(x_train, image_size),
                y_train,
                _resized(x_test, image_size),
                y_test,
                _CLASS_NAMES[dataset],
            )
        else:
            return _image_folder(path, image_size, validation_split, seed)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        raise data_error(
            path,
            "is a single image",
            "pass --data PATH to the folder that holds "
            "the images (one subfolder per class, or flat)",
        )
    return _npz_images(path, dataset, image_size)


def is_image_folder(path):
    """Whether `path` is a folder of images: a folder that holds neither mnist.npz nor IDX files."""
    path = Path(path).expanduser()
    return (
        path.is_dir()
        and not (path / "mnist.npz").is_file()
        and not any(
            (path / (name + gz)).is_file() for name in IDX_FILES.values() for gz in ("", ".gz")
        )
    )


def load_images_to_score(path=None, dataset="mnist", image_size=None):
    """Images to score one by one, and where each came from, in a stable order.

    Args:
        path: a folder of PNG or JPEG images (every one of them, in sorted path
            order, subfolders included), a folder of IDX files or an ``.npz``
            (their test split), or ``None`` for ``dataset``'s test split (as
            :func:`load_images`).
        dataset: as for :func:`load_images`.
        image_size: ``(height, width)`` to resize every image to, or ``None``.

    Returns:
        ``(x, sources)``: float32 images ``(n, h, w, c)`` in [0, 1], and for each
        its path relative to the folder, or its index in the test split.

    Raises:
        DataError: as :func:`load_images`.
    """
    image_size = _checked_size(image_size)
    folder = None if path is None else Path(path).expanduser()
    if folder is not None and is_image_folder(folder):
        files, _, _ = image_files(folder)
        x = read_images(files, np.arange(len(files)), image_size)
        return x, [path.relative_to(folder).as_posix() for path in files]
    x = load_images(path, dataset, image_size).x_test
    return x, [str(i) for i in range(len(x))]


def _checked_size(image_size):
    """`image_size` as a pair of positive ints, or None; ValueError otherwise."""
    if image_size is None:
        return None
    try:
        # operator.index: integers only (numpy's too); 28.5 rows is a mistake.
        height, width = (operator.index(v) for v in image_size)
    except (TypeError, ValueError):
        height = width = 0
    if height < 1 or width < 1:
        raise ValueError(
            f"image_size must be (height, width), two positive integers, not {image_size!r}"
        )
    return height, width


def _scaled(raw):
    """((x, y), (x, y)) of uint8 MNIST-like arrays -> float32 (n, 28, 28, 1) and int64."""
    return tuple((_float_images(x), y.astype(np.int64)) for x, y in raw)


def _float_images(x):
    """float32 (n, h, w, c) in [0, 1] from checked integer, bool or float images (n, h, w[, c])."""
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype.kind in "ui":
        x = x.astype(np.float32)
        x /= 255  # the division of load_mnist, so that the two agree bit for bit
        return x
    return x.astype(np.float32, copy=False)  # bool as 0 and 1, floats as they are


def _resized(x, size):
    """float32 images (n, h, w, c) resized to `size` (h, w) with Pillow's bilinear filter."""
    if size is None or x.shape[1:3] == size:
        return x
    from PIL import Image  # Pillow (a dependency of matplotlib): only resizing needs it

    height, width = size
    out = np.empty((len(x), height, width, x.shape[3]), np.float32)
    for i in range(len(x)):
        for c in range(x.shape[3]):
            # One channel at a time, as a 32-bit float ("F") image: no rounding
            # to 8 bits, and the filter that resizes the images of a folder.
            channel = Image.fromarray(np.ascontiguousarray(x[i, :, :, c]))
            out[i, :, :, c] = np.asarray(channel.resize((width, height), Image.Resampling.BILINEAR))
    # The filter's weights are positive, so only float rounding can step out.
    return np.clip(out, 0, 1, out=out)


def _keras_fashion_mnist():
    """uint8 Fashion-MNIST from Keras (download or cache); no fallback: none is bundled."""
    source = "keras.datasets.fashion_mnist"
    try:
        import keras  # here only: keras brings its backend along (seconds)

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as err:  # offline, Keras raises a bare Exception
        raise DataError(
            f"data: {source}: Fashion-MNIST could not be downloaded ({one_line(err)}), and no "
            "sample of it is bundled (the bundled sample is MNIST only); pass --data PATH to a "
            "folder of its IDX files (Debian's dataset-fashion-mnist package puts them in "
            "/usr/share/datasets/fashion-mnist) or connect to the internet once so that Keras "
            "caches it"
        ) from err
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _validated(arrays, dict.fromkeys(_KEYS, source))


def _npz_images(path, dataset, image_size):
    """The Images of a Keras-layout .npz of any image size, with or without labels."""
    arrays = _read_npz(path, required=("x_train", "x_test"), fix=_NPZ_FIX)

    def bad(problem, fix=_NPZ_FIX):
        return data_error(path, problem, fix)

    images = {}
    for key in ("x_train", "x_test"):
        x = arrays[key]
        if x.dtype.kind not in "buif":
            raise bad(f"{key} has dtype {x.dtype}; expected uint8 or float images")
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
            raise bad(
                f"{key} has shape {x.shape}; expected (n, h, w) or (n, h, w, c) images "
                "with c 1 or 3"
            )
        if x.size == 0:
            raise bad(f"{key} has shape {x.shape}, no pixels")
        if x.dtype.kind == "f":
            # NaN first: it compares False with everything, so the range test
            # below would let it through.
            if np.isnan(x).any():
                raise bad(f"{key} has NaN values")
            if x.min() < 0 or x.max() > 1:
                raise bad(
                    f"{key} has values {x.min():g}..{x.max():g}; expected floats in [0, 1] "
                    "(or uint8 0..255)"
                )
        elif x.dtype.kind in "ui" and (x.min() < 0 or x.max() > 255):
            raise bad(
                f"{key} has values {x.min()}..{x.max()}; expected 0..255 (or floats in [0, 1])"
            )
        images[key] = _float_images(x)
    train_shape, test_shape = images["x_train"].shape[1:], images["x_test"].shape[1:]
    if train_shape[2] != test_shape[2]:
        raise bad(
            f"x_train images have {train_shape[2]} channel(s) but x_test images {test_shape[2]}"
        )
    if image_size is None and train_shape != test_shape:
        raise bad(
            f"x_train images are {train_shape[0]}x{train_shape[1]} pixels (height x width) "
            f"but x_test images {test_shape[0]}x{test_shape[1]}",
            SIZE_FIX,
        )

    present = [key for key in ("y_train", "y_test") if key in arrays]
    labels = dict.fromkeys(("y_train", "y_test"))
    class_names = None
    if len(present) == 1:
        absent = "y_test" if present == ["y_train"] else "y_train"
        raise bad(f"has {present[0]} but no {absent}; labels are for both or neither")
    if present:
        for key in present:
            y, n = arrays[key], len(images["x" + key[1:]])
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]  # Keras's CIFAR layout, one label per row
            if y.ndim != 1 or y.dtype.kind not in "ui":
                raise bad(
                    f"{key} has shape {arrays[key].shape} and dtype {y.dtype}; expected "
                    "(n,) integer labels"
                )
            if len(y) != n:
                raise bad(f"{n} images in x{key[1:]} but {len(y)} labels in {key}")
            if y.min() < 0 or y.max() >= _MAX_CLASSES:
                raise bad(
                    f"{key} has labels {y.min()}..{y.max()}; expected class indices "
                    f"0..{_MAX_CLASSES - 1}"
                )
            labels[key] = y.astype(np.int64)
        n_classes = int(max(labels["y_train"].max(), labels["y_test"].max())) + 1
        class_names = (
            _CLASS_NAMES[dataset]
            if n_classes <= len(_CLASS_NAMES[dataset])
            else tuple(str(i) for i in range(n_classes))
        )
    return Images(
        _resized(images["x_train"], image_size),
        labels["y_train"],
        _resized(images["x_test"], image_size),
        labels["y_test"],
        class_names,
    )


def _image_folder(folder, image_size, validation_split, seed):
    """The Images of a folder of PNG/JPEG files, a seeded random part held out."""
    split = split_folder(folder, validation_split, seed)
    # Read in the folder's order (an error names the first of its kind), each
    # image straight to its row in the draw: the test images, then the
    # training ones. No shuffled copy of the whole array, which counts for
    # big folders.
    row = {path: i for i, path in enumerate(split.test_files + split.train_files)}
    x = read_images(split.files, [row[path] for path in split.files], image_size)
    n_test = len(split.test_files)
    return Images(x[n_test:], split.train_labels, x[:n_test], split.test_labels, split.class_names)


def __getattr__(name):
    # The PyDataset classes import Keras: only when asked for.
    if name == "DynamicBinarization":
        from vae.binarization import DynamicBinarization

        return DynamicBinarization
    if name == "ImageFolder":
        from vae.folders import ImageFolder

        return ImageFolder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
