"""Training images: MNIST, Fashion-MNIST, a Keras-layout ``.npz`` or a folder of images, validated.

:func:`load_mnist` and :func:`load_raw_mnist` read MNIST, from these
sources, first found wins:

1. the ``path`` argument (the ``--data PATH`` option of the scripts);
2. the ``VAE_DATA`` environment variable (same forms as ``path``);
3. ``keras.datasets.mnist.load_data()`` (downloads once, then reads the cache
   in ``~/.keras/datasets``);
4. if that fails (offline), ``mnist_sample.npz`` bundled with this package:
   the first 10,000 training and first 2,000 test digits of real MNIST,
   with a warning.

:func:`load_images` reads more than MNIST, as float32 ``(n, h, w, c)``
arrays in an :class:`Images`:

- ``path=None``: MNIST as above, or Fashion-MNIST from
  ``keras.datasets.fashion_mnist`` (no sample of it is bundled);
- a Keras-layout ``.npz`` of any image size, grey or colour, with or without
  labels (``x_train``, ``x_test``, optionally ``y_train``, ``y_test``);
- a folder of the four IDX files (MNIST and Fashion-MNIST use the same names);
- a folder of PNG or JPEG images, one subfolder per class or flat (no labels),
  read with Pillow; a seeded random fraction is held out for testing.

A path named by the user (1 or 2) that is missing or malformed raises
:class:`DataError` instead of falling back: training on other data than the
user asked for, without a word, would be worse than stopping.
"""

import gzip
import math
import numbers
import operator
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

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
]

SAMPLE_PATH = Path(__file__).with_name("mnist_sample.npz")

# Standard names of the MNIST files (each may also end in .gz), keyed like the
# arrays of the Keras mnist.npz.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_KEYS = tuple(IDX_FILES)

# IDX magic: two zero bytes, 0x08 (unsigned byte data), number of dimensions.
_MAGIC = {"images": 0x00000803, "labels": 0x00000801}
_CHUNK = 1 << 20
_FIX = "pass --data PATH to a Keras mnist.npz or a folder of IDX files"
_EXPECTED = "expected mnist.npz or the four IDX files " + ", ".join(
    name + "[.gz]" for name in IDX_FILES.values()
)


class DataError(ValueError):
    """Missing or malformed data; the one-line message names the path, the problem and the fix."""


def _error(path, problem, fix=_FIX):
    return DataError(f"data: {path}: {problem}; {fix}")


def _one_line(err):
    """`TypeName: message` on one line and short, for quoting a library's error."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def read_idx(path, kind):
    """Reads one MNIST IDX file, gzipped or raw.

    Args:
        path: the file. Gzip is recognised by its content, not by the name.
        kind: ``"images"`` (magic 0x00000803, dims n x 28 x 28) or
            ``"labels"`` (magic 0x00000801, dim n).

    Returns:
        A uint8 array of shape ``(n, 28, 28)`` or ``(n,)``. Label values are
        not checked here (:func:`load_raw_mnist` does).

    Raises:
        DataError: the file is unreadable, has the wrong magic number or
            dimensions, or its length does not match its header.
    """
    if kind not in _MAGIC:
        raise ValueError(f"kind must be 'images' or 'labels', not {kind!r}")
    ndim = 3 if kind == "images" else 1
    try:
        with open(path, "rb") as raw:
            is_gzip = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if is_gzip else raw
            header = stream.read(4 + 4 * ndim)
            if len(header) < 4 + 4 * ndim:
                raise _error(path, f"too short for an IDX {kind} header ({len(header)} bytes)")
            magic, *dims = struct.unpack(f">{1 + ndim}I", header)  # big-endian uint32s
            if magic != _MAGIC[kind]:
                raise _error(
                    path,
                    f"magic number 0x{magic:08x} is not that of IDX {kind} (0x{_MAGIC[kind]:08x})",
                )
            if kind == "images" and (dims[1], dims[2]) != (28, 28):
                raise _error(path, f"images are {dims[1]}x{dims[2]} pixels; expected 28x28")
            size = math.prod(dims)
            # Read in chunks, never more than the header promises plus one byte:
            # a lying header (say 10**9 images in a small file) then ends in a
            # length error after reading what is really there, instead of
            # allocating what the header claims.
            data = bytearray()
            while len(data) <= size:
                chunk = stream.read(min(_CHUNK, size + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise _error(path, f"cannot read IDX file ({_one_line(err)})") from err
    if len(data) != size:
        found = f"{len(data)}" if len(data) < size else "more"
        raise _error(
            path,
            f"header promises {dims[0]} {kind} ({size} bytes after the header) "
            f"but the file holds {found}",
        )
    return np.frombuffer(data, np.uint8).reshape(dims)


def _read_idx_folder(folder):
    """The four IDX files of `folder` as a dict of arrays, and their paths."""
    paths = {}
    for key, name in IDX_FILES.items():
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                paths[key] = candidate
                break
    if not paths:
        raise _error(folder, f"no MNIST files found ({_EXPECTED})")
    missing = [IDX_FILES[key] + "[.gz]" for key in _KEYS if key not in paths]
    if missing:
        raise _error(folder, f"missing IDX file(s) {', '.join(missing)}")
    arrays = {
        key: read_idx(p, "images" if key.startswith("x") else "labels") for key, p in paths.items()
    }
    return arrays, paths


def _read_npz(path, required=_KEYS, fix=_FIX):
    """The arrays x_train, y_train, x_test, y_test of a Keras-layout .npz.

    Those of them that the archive holds: `required` names the ones it must
    (all four for MNIST, only the images for :func:`load_images`).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        # np.load guesses the format from these bytes; anything but a zip would
        # end in a confusing "pickled data" error, so say what the file is.
        if head[:2] == b"\x1f\x8b" or head[:3] == b"\0\0\x08":
            raise _error(path, "is a single IDX file (use the folder that holds all four)", fix)
        if head not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise _error(
                path, f"not an .npz archive (it starts with {head!r}, not a zip header)", fix
            )
        # allow_pickle=False always: a file named on the command line is
        # untrusted, and unpickling it could run arbitrary code.
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in required if key not in archive.files]
            if missing:
                expected = (
                    "the Keras layout x_train, y_train, x_test, y_test"
                    if set(required) == set(_KEYS)
                    else "x_train and x_test"
                )
                raise _error(
                    path,
                    f"no array(s) {', '.join(missing)} in the archive (it holds "
                    f"{', '.join(archive.files) or 'nothing'}); expected " + expected,
                    fix,
                )
            return {key: archive[key] for key in _KEYS if key in archive.files}
    except DataError:
        raise
    except Exception as err:
        # zipfile, zlib and numpy raise a zoo of types on a corrupt archive
        # (BadZipFile, zlib.error, ValueError, EOFError, NotImplementedError
        # for an unknown compression, RuntimeError for an encrypted member,
        # MemoryError for a lying array header, ...): all mean "not usable".
        raise _error(path, f"cannot read .npz archive ({_one_line(err)})", fix) from err


def _validated(arrays, paths):
    """Checks dtypes, shapes, value ranges and counts; returns uint8 pairs."""
    out = {}
    for key in _KEYS:
        a, path = arrays[key], paths[key]
        images = key.startswith("x")
        if images and (a.ndim != 3 or a.shape[1:] != (28, 28)):
            raise _error(path, f"{key} has shape {a.shape}; expected (n, 28, 28) images")
        if not images and a.ndim != 1:
            raise _error(path, f"{key} has shape {a.shape}; expected (n,) labels")
        # Only integers: float images might be scaled to [0, 1] already, and
        # guessing would silently train on wrong values.
        if a.dtype.kind not in "ui":
            raise _error(path, f"{key} has dtype {a.dtype}; expected integers (uint8)")
        if len(a) == 0:
            raise _error(path, f"{key} is empty")
        high = 255 if images else 9
        if a.min() < 0 or a.max() > high:
            raise _error(path, f"{key} has values {a.min()}..{a.max()}; expected 0..{high}")
        out[key] = a.astype(np.uint8, copy=False)
    for split in ("train", "test"):
        n_images, n_labels = len(out["x_" + split]), len(out["y_" + split])
        if n_images != n_labels:
            raise _error(
                paths["y_" + split], f"{n_images} {split} images but {n_labels} {split} labels"
            )
    return (out["x_train"], out["y_train"]), (out["x_test"], out["y_test"])


def load_raw_mnist(path):
    """Loads MNIST as stored, from a Keras mnist.npz or a folder of IDX files.

    Args:
        path: a Keras-layout ``.npz`` (arrays ``x_train``, ``y_train``,
            ``x_test``, ``y_test``), or a folder holding ``mnist.npz`` or else
            the four IDX files (standard names, gzipped or raw).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, all uint8; images of shape
        ``(n, 28, 28)`` with values 0..255, labels of shape ``(n,)`` in 0..9.

    Raises:
        DataError: the path is missing, or holds no valid MNIST data.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        if not (path / "mnist.npz").is_file():
            return _validated(*_read_idx_folder(path))
        path = path / "mnist.npz"
    elif not path.exists():
        raise _error(path, "no such file or directory")
    return _validated(_read_npz(path), dict.fromkeys(_KEYS, path))


def _keras_or_sample():
    """uint8 MNIST from Keras (download or cache), else the bundled sample."""
    try:
        # Imported here: keras brings its backend along (seconds), which
        # loading from a path does not need.
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as err:  # offline, Keras raises a bare Exception
        warnings.warn(
            f"data: Keras could not get MNIST ({_one_line(err)}); using the bundled sample of "
            "real MNIST, its first 10,000 training and 2,000 test digits. For the full "
            "60,000/10,000, connect to the internet once (Keras caches the download) or "
            "pass --data PATH (or set VAE_DATA) to a mnist.npz or a folder of IDX files",
            stacklevel=3,
        )
        return load_raw_mnist(SAMPLE_PATH)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _validated(arrays, dict.fromkeys(_KEYS, "keras.datasets.mnist"))


def load_mnist(path=None, flatten=False):
    """Loads MNIST scaled for training.

    Args:
        path: a Keras ``mnist.npz``, or a folder holding ``mnist.npz`` or the
            four IDX files. ``None``: the ``VAE_DATA`` environment variable
            (same forms; unset or empty means none), else the Keras download,
            else the bundled 10,000/2,000-digit sample with a warning.
        flatten: return images as ``(n, 784)`` rows (for dense models)
            instead of ``(n, 28, 28, 1)`` (for convolutional ones).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: images float32 in [0, 1];
        labels int64 in 0..9 (numpy's default integer, fine for Keras losses
        and metrics).

    Raises:
        DataError: ``path`` or ``VAE_DATA`` is missing or malformed (no
            fallback then), or the Keras data is malformed.
    """
    if path is not None:
        raw = load_raw_mnist(path)
    elif os.environ.get("VAE_DATA"):
        try:
            raw = load_raw_mnist(os.environ["VAE_DATA"])
        except DataError as err:
            raise DataError(f"{err} (the path came from VAE_DATA)") from err
    else:
        raw = _keras_or_sample()
    result = []
    for x, y in raw:
        x = x.astype(np.float32)
        x /= 255
        x = x.reshape(len(x), 784) if flatten else x.reshape(len(x), 28, 28, 1)
        result.append((x, y.astype(np.int64)))
    return tuple(result)


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
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# A label beyond this is an ID, not a class index: naming every class up to it
# would make millions of names.
_MAX_CLASSES = 1 << 16
_ANY_FIX = (
    "pass --data PATH to a Keras-layout .npz, a folder of IDX files or a folder of PNG/JPEG images"
)
_NPZ_FIX = (
    "save x_train and x_test as (n, h, w) or (n, h, w, c) arrays (c 1 or 3) of uint8 or "
    "of floats in [0, 1], with optional y_train and y_test integer labels"
)
_SIZE_FIX = "pass --image-size H W (image_size=(h, w)) to resize every image to one size"
_IMAGE_FIX = "replace or remove the file"


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
        raise _error(path, "no such file or directory", _ANY_FIX)
    if path.is_dir():
        if (path / "mnist.npz").is_file():
            path = path / "mnist.npz"
        elif any(
            (path / (name + gz)).is_file() for name in IDX_FILES.values() for gz in ("", ".gz")
        ):
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
    elif path.suffix.lower() in _IMAGE_SUFFIXES:
        raise _error(
            path,
            "is a single image",
            "pass --data PATH to the folder that holds "
            "the images (one subfolder per class, or flat)",
        )
    return _npz_images(path, dataset, image_size)


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
    if (
        folder is not None
        and folder.is_dir()
        and not (folder / "mnist.npz").is_file()
        and not any(
            (folder / (name + gz)).is_file() for name in IDX_FILES.values() for gz in ("", ".gz")
        )
    ):
        files, _, _ = _image_files(folder)
        x = _read_images(files, np.arange(len(files)), image_size)
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
            f"data: {source}: Fashion-MNIST could not be downloaded ({_one_line(err)}), and no "
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
        return _error(path, problem, fix)

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
            _SIZE_FIX,
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
    files, labels, class_names = _image_files(folder)
    n = len(files)
    if n < 2:
        raise _error(
            folder,
            f"holds only one image ({files[0]}); at least 2 are needed, one "
            "to train on and one to test",
            "add images to the folder",
        )
    n_test = min(max(round(n * validation_split), 1), n - 1)
    # The images go straight to their place in the drawn order: file `order[j]`
    # to row j, rows 0..n_test-1 the test set. No shuffled copy of the whole
    # array then, which counts for big folders.
    order = np.random.default_rng(0 if seed is None else seed).permutation(n)
    row = np.empty(n, np.intp)
    row[order] = np.arange(n)
    x = _read_images(files, row, image_size)
    y_train = y_test = None
    if labels is not None:
        y = np.asarray(labels, np.int64)[order]
        y_train, y_test = y[n_test:], y[:n_test]
    return Images(x[n_test:], y_train, x[:n_test], y_test, class_names)


def _image_files(folder):
    """The PNG/JPEG files under `folder` in sorted order, their labels and the class names."""
    files, classes = [], []
    # os.walk rather than Path.rglob: it lists names without a stat per file,
    # which counts with 60,000 images. Sorted in place, so that every machine
    # and file system gives the same order (and the seed the same split).
    for root, dirs, names in os.walk(folder):
        # Hidden ones are tools' (.git, .ipynb_checkpoints, macOS's ._x.png), not images.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        top = os.path.relpath(root, folder).split(os.sep)[0]
        for name in sorted(names):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in _IMAGE_SUFFIXES:
                files.append(Path(root, name))
                classes.append(None if top == os.curdir else top)
    if not files:
        raise _error(
            folder,
            "no images (.png, .jpg, .jpeg), IDX files or mnist.npz in the folder or its subfolders",
            _ANY_FIX,
        )
    if classes[0] is None:  # os.walk lists the folder's own files first
        if classes[-1] is not None:
            subfolder = next(c for c in classes if c is not None)
            raise _error(
                folder,
                f"holds images both in itself ({files[0].name}) and in its subfolder {subfolder}",
                "put each class's images in a subfolder of its own, or all images in "
                "the folder itself for no labels",
            )
        return files, None, None
    class_names = tuple(sorted(set(classes)))
    index = {name: i for i, name in enumerate(class_names)}
    return files, [index[name] for name in classes], class_names


def _read_images(files, row, image_size):
    """float32 (n, h, w, c) of `files`, file i in row `row[i]`; c 3 if any is in colour."""
    from PIL import Image  # Pillow (a dependency of matplotlib): only image folders need it

    pixels, first = [], None
    for path in files:
        try:
            with Image.open(path) as image:
                a = _pixels(image, image_size)
        except Exception as err:
            # Pillow raises UnidentifiedImageError, OSError ("image file is
            # truncated"), SyntaxError, DecompressionBombError, ...: all mean
            # "this file is not a usable image".
            raise _error(path, f"cannot read image ({_one_line(err)})", _IMAGE_FIX) from err
        if first is None:
            first = path, a.shape[:2]
        elif a.shape[:2] != first[1]:
            raise _error(
                path,
                f"image is {a.shape[0]}x{a.shape[1]} pixels (height x width) but "
                f"{first[0]} is {first[1][0]}x{first[1][1]}",
                _SIZE_FIX,
            )
        pixels.append(a)
    channels = 3 if any(a.ndim == 3 for a in pixels) else 1
    x = np.empty((len(pixels), *first[1], channels), np.float32)
    for i, a in zip(row, pixels):
        # A grey image in an RGB set: its level in R, G and B, as Pillow's
        # convert("RGB") does.
        x[i] = a if a.ndim == 3 else a[..., None]
    x /= 255
    return x


def _pixels(image, size):
    """uint8 pixels (h, w) if grey or (h, w, 3) if colour of an open Pillow image, resized."""
    from PIL import Image

    image.load()  # decode now: a truncated file fails here, in the caller's try
    mode = image.mode
    if mode.startswith("I"):
        # 16-bit grey PNG: convert("L") would clip at 255 instead of scaling.
        levels = np.asarray(image).astype(np.float64) / 257
        image = Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8))
    elif mode in ("1", "L", "LA", "La", "F"):
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


# Binarization. A Bernoulli likelihood is a probability only for binary
# pixels, so likelihood numbers need binary digits. Two habits: threshold
# once (the TensorFlow tutorial), or draw every pixel afresh from its grey
# level each epoch ("dynamic", the standard of the published numbers; it also
# acts as a regularizer).

BINARIZATIONS = ("static", "dynamic")


def _bernoulli(rng, p):
    # A uniform draw in [0, 1) falls below p with probability p: grey level 0
    # stays 0 and 1 stays 1.
    return (rng.random(p.shape, dtype=np.float32) < p).astype(np.float32)


def binarize(x, mode="static", seed=0):
    """Binary digits from grey levels, once.

    Args:
        x: images, float values in [0, 1].
        mode: ``"static"``: 1 where ``x > 0.5`` (the tutorial's threshold),
            else 0. ``"dynamic"``: one Bernoulli draw per pixel, 1 with
            probability ``x``.
        seed: seed of the dynamic draw. The fixed default gives every run the
            same binary test set, so their numbers compare.

    Returns:
        A float32 array of 0s and 1s, of the shape of ``x``.

    Example:

    >>> x_test = binarize(x_test, "dynamic")   # a fixed draw, for evaluation
    """
    x = np.asarray(x, dtype=np.float32)
    if mode == "static":
        return (x > 0.5).astype(np.float32)
    if mode == "dynamic":
        return _bernoulli(np.random.default_rng(seed), x)
    raise ValueError(f"unknown binarization {mode!r}: use one of {', '.join(BINARIZATIONS)}")


class _DynamicBinarization:
    """Batches of ``x`` whose pixels are drawn afresh from their grey levels each epoch.

    A ``keras.utils.PyDataset``: give it to ``fit`` in place of ``x`` (without
    ``batch_size``). Each epoch reshuffles the digits and draws every pixel
    again, 1 with probability its grey level. The draws are a function of
    ``(seed, epoch, batch index)`` alone, so a seeded run repeats exactly
    whatever order or threads Keras reads the batches in.

    Args:
        x: images, float values in [0, 1], shape ``(n, ...)``.
        batch_size: digits per batch (the last batch may be smaller).
        seed: integer seed, or ``None`` for a fresh one.
        shuffle: reshuffle the digits each epoch.
        labels: a conditional model's second input, one row per digit
            (e.g. one-hot labels): batches are then ``(digits, labels)``.
        binarize: draw the pixels from their grey levels (``False`` keeps
            the images as they are, for ``perturb`` alone).
        perturb: the fraction of pixels replaced by noise, drawn afresh in
            every batch: a fair coin's 0 or 1 for binary images, a uniform
            grey level otherwise. Ren et al. 2019's background model
            ("Likelihood ratios for out-of-distribution detection") trains
            on images so perturbed (``vae.scores.likelihood_ratio``).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    Example:

    >>> train = DynamicBinarization(x_train, batch_size=100, seed=1)
    >>> vae.fit(train, epochs=100, validation_data=(binarize(x_test, "dynamic"), None))
    """

    def __init__(
        self,
        x,
        batch_size,
        seed=None,
        shuffle=True,
        labels=None,
        binarize=True,
        perturb=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 <= perturb < 1:
            raise ValueError(f"perturb must be a fraction in [0, 1), not {perturb!r}")
        self.x = np.asarray(x, dtype=np.float32)
        self.binarize = binarize
        self.perturb = float(perturb)
        self._binary_noise = binarize or bool(np.all((self.x == 0) | (self.x == 1)))
        self.labels = None if labels is None else np.asarray(labels)
        self.batch_size = int(batch_size)
        self.seed = np.random.SeedSequence().entropy if seed is None else int(seed)
        self.shuffle = shuffle
        # Counted by on_epoch_begin; batches read before the first epoch (Keras
        # reads a few to learn their shapes) come from "epoch 0".
        self.epoch = 0
        self._order = self._order_of(0)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def on_epoch_begin(self):
        self.epoch += 1
        self._order = self._order_of(self.epoch)

    def _order_of(self, epoch):
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of a dataset of {len(self)} batches")
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        digits = _bernoulli(rng, self.x[chosen]) if self.binarize else self.x[chosen]
        if self.perturb:
            replaced = rng.random(digits.shape, dtype=np.float32) < self.perturb
            noise = rng.random(digits.shape, dtype=np.float32)
            digits = np.where(
                replaced, (noise < 0.5) if self._binary_noise else noise, digits
            ).astype(np.float32)
        return ((digits, self.labels[chosen]),) if self.labels is not None else (digits,)


def __getattr__(name):
    # DynamicBinarization is a keras.utils.PyDataset, and importing Keras takes
    # seconds that loading MNIST does not need: the class is made on first use.
    if name == "DynamicBinarization":
        import keras

        cls = type(
            name,
            (_DynamicBinarization, keras.utils.PyDataset),
            {
                "__module__": __name__,
                "__qualname__": name,
                "__doc__": _DynamicBinarization.__doc__,
            },
        )
        globals()[name] = cls  # later look-ups (and pickle) find it directly
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
