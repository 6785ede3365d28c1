"""MNIST's files: the four IDX files (gzipped or raw) or a Keras-layout ``mnist.npz``, validated.

:func:`load_mnist` and :func:`load_raw_mnist` read MNIST, from these
sources, first found wins:

1. the ``path`` argument (the ``--data PATH`` option of the scripts);
2. the ``VAE_DATA`` environment variable (same forms as ``path``);
3. ``keras.datasets.mnist.load_data()`` (downloads once, then reads the cache
   in ``~/.keras/datasets``);
4. if that fails (offline), ``mnist_sample.npz`` bundled with this package:
   the first 10,000 training and first 2,000 test digits of real MNIST,
   with a warning.

A path named by the user (1 or 2) that is missing or malformed raises
:class:`DataError` instead of falling back: training on other data than the
user asked for, without a word, would be worse than stopping.
"""

import gzip
import math
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from vae.data_error import DataError, data_error, one_line

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


def _error(path, problem, fix=_FIX):
    return data_error(path, problem, fix)


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
        raise _error(path, f"cannot read IDX file ({one_line(err)})") from err
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
        raise _error(path, f"cannot read .npz archive ({one_line(err)})", fix) from err


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
            f"data: Keras could not get MNIST ({one_line(err)}); using the bundled sample of "
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
