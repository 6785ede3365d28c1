"""Tests of vae.data against the real MNIST files and independent references."""

import gzip
import io
import pickle
import struct
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_MNIST
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from vae.data import SAMPLE_PATH, DataError, load_mnist, load_raw_mnist, read_idx

# The real files themselves, whatever $VAE_DATA says: these tests know their counts.
MNIST_DIR = SHARED_MNIST
NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# Published per-class counts of MNIST (digits 0..9).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_mnist = pytest.mark.skipif(
    not all((MNIST_DIR / (name + ".gz")).is_file() for name in NAMES.values()),
    reason=f"real MNIST IDX files not found in {MNIST_DIR}",
)


def reference_idx(path):
    """An independent IDX reader: fixed 16/8-byte headers, no checks."""
    data = gzip.decompress(path.read_bytes())
    if data[3] == 3:
        n, rows, cols = struct.unpack(">3I", data[4:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8)


def idx_bytes(array):
    """IDX encoding of a uint8 array of shape (n, 28, 28) or (n,)."""
    magic = 0x800 | array.ndim
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, arrays, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in NAMES.items():
        data = idx_bytes(arrays[key])
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def small_arrays(n_train=20, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def flat(loaded):
    """((a, b), (c, d)) -> [a, b, c, d]."""
    return [a for pair in loaded for a in pair]


@pytest.fixture(scope="module")
def real_raw():
    """The real MNIST, uint8, read with the independent reference reader."""
    if not MNIST_DIR.is_dir():
        pytest.skip(f"real MNIST IDX files not found in {MNIST_DIR}")
    return {key: reference_idx(MNIST_DIR / (name + ".gz")) for key, name in NAMES.items()}


@pytest.fixture(autouse=True)
def no_vae_data(monkeypatch):
    monkeypatch.delenv("VAE_DATA", raising=False)


# --- the real files -----------------------------------------------------------


@needs_mnist
def test_idx_folder_gives_full_mnist(real_raw):
    (x_train, y_train), (x_test, y_test) = load_mnist(MNIST_DIR)
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert x_test.min() == 0.0 and x_test.max() == 1.0
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    np.testing.assert_array_equal(x_train[..., 0], real_raw["x_train"] / np.float32(255))
    np.testing.assert_array_equal(y_test, real_raw["y_test"])


@needs_mnist
def test_raw_and_flatten_agree_with_reference(real_raw):
    raw = load_raw_mnist(MNIST_DIR)
    for got, key in zip(flat(raw), NAMES):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, real_raw[key])
    (x_flat, y_flat), (xt_flat, _) = load_mnist(MNIST_DIR, flatten=True)
    assert x_flat.shape == (60000, 784) and xt_flat.shape == (10000, 784)
    np.testing.assert_array_equal(x_flat, raw[0][0].reshape(60000, 784) / np.float32(255))
    np.testing.assert_array_equal(y_flat, real_raw["y_train"])


@needs_mnist
def test_uncompressed_idx_files_load(tmp_path, real_raw):
    folder = write_idx_folder(tmp_path / "raw", real_raw, gz=False)
    assert not list(folder.glob("*.gz"))
    for got, key in zip(flat(load_raw_mnist(folder)), NAMES):
        np.testing.assert_array_equal(got, real_raw[key])


@needs_mnist
def test_keras_npz_loads_like_idx_folder(tmp_path, real_raw):
    part = {key: a[:500] if key.endswith("train") else a[:100] for key, a in real_raw.items()}
    npz = tmp_path / "mnist.npz"
    np.savez(npz, **part)
    write_idx_folder(tmp_path / "idx", part)
    for flatten in (False, True):
        from_npz = flat(load_mnist(npz, flatten=flatten))
        from_idx = flat(load_mnist(tmp_path / "idx", flatten=flatten))
        from_dir = flat(load_mnist(tmp_path, flatten=flatten))  # a folder holding mnist.npz
        for a, b, c in zip(from_npz, from_idx, from_dir):
            assert a.dtype == b.dtype == c.dtype
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    assert from_npz[0].shape == (500, 784) and from_npz[2].shape == (100, 784)


def test_vae_data_env_is_honoured(tmp_path, monkeypatch):
    arrays = small_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.setenv("VAE_DATA", str(tmp_path / "mnist.npz"))
    (x, y), _ = load_mnist()
    np.testing.assert_array_equal(y, arrays["y_train"])
    # An explicit path beats VAE_DATA.
    other = write_idx_folder(tmp_path / "other", small_arrays(seed=1))
    (_, y_other), _ = load_mnist(other)
    np.testing.assert_array_equal(y_other, small_arrays(seed=1)["y_train"])


def test_bad_vae_data_raises_instead_of_falling_back(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="VAE_DATA") as caught:
        load_mnist()
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_keras_download_is_used_when_it_works(monkeypatch):
    keras = pytest.importorskip("keras")
    arrays = small_arrays()
    monkeypatch.setattr(
        keras.datasets.mnist,
        "load_data",
        lambda: ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x, y), (xt, yt) = load_mnist()
    np.testing.assert_array_equal(yt, arrays["y_test"])
    assert x.shape == (20, 28, 28, 1)


@needs_mnist
def test_offline_falls_back_to_bundled_sample(monkeypatch, real_raw):
    keras = pytest.importorskip("keras")

    def offline():
        raise OSError("no internet")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.warns(UserWarning, match="10,000 training and 2,000 test") as record:
        (x_train, y_train), (x_test, y_test) = load_mnist(flatten=True)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert x_train.shape == (10000, 784) and x_test.shape == (2000, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    # Bit for bit the first 10,000 / 2,000 digits of the real files.
    sample = load_raw_mnist(SAMPLE_PATH)
    for got, key in zip(flat(sample), NAMES):
        n = 10000 if key.endswith("train") else 2000
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, real_raw[key][:n])
    expected = real_raw["x_test"][:2000].reshape(2000, 784) / np.float32(255)
    np.testing.assert_array_equal(x_test, expected)
    np.testing.assert_array_equal(y_train, real_raw["y_train"][:10000])


# --- errors -------------------------------------------------------------------

# Each maker writes a bad source under tmp_path and returns (what to load,
# the path the message must name).


def _npz(tmp_path, **changes):
    path = tmp_path / "bad.npz"
    np.savez(path, **dict(small_arrays(), **changes))
    return path, path


def _idx_folder_with(tmp_path, key, data):
    """A valid IDX folder whose `key` file (gzipped) holds `data` instead."""
    folder = write_idx_folder(tmp_path / "idx", small_arrays())
    target = folder / (NAMES[key] + ".gz")
    target.write_bytes(data)
    return folder, target


def _missing(tmp_path):
    return tmp_path / "does-not-exist", tmp_path / "does-not-exist"


def _empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty", tmp_path / "empty"


def _partial_folder(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", small_arrays())
    (folder / (NAMES["y_test"] + ".gz")).unlink()
    return folder, folder


def _text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not the digits you are looking for\n")
    return path, path


def _single_idx_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(small_arrays()["x_train"])))
    return path, path


def _truncated_gz(tmp_path):
    data = gzip.compress(idx_bytes(small_arrays()["x_train"]))
    return _idx_folder_with(tmp_path, "x_train", data[: len(data) // 2])


def _wrong_magic(tmp_path):
    labels = idx_bytes(small_arrays()["y_train"])
    return _idx_folder_with(tmp_path, "y_train", gzip.compress(b"\0\0\x08\x03" + labels[4:]))


def _npz_missing_arrays(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((1, 28, 28), np.uint8))
    return path, path


def _pickled_npz(tmp_path):
    arrays = dict(small_arrays())
    arrays["y_train"] = np.array([object()] * 20, dtype=object)  # needs pickle to load
    path = tmp_path / "pickled.npz"
    np.savez(path, **arrays)
    return path, path


BAD = {  # case: (maker, words the message must hold)
    "missing path": (_missing, "no such file"),
    "folder without files": (_empty_folder, "no MNIST files found"),
    "folder missing one file": (_partial_folder, "missing IDX file(s) t10k-labels"),
    "text file": (_text_file, "not an .npz"),
    "single idx file": (_single_idx_file, "single IDX file"),
    "truncated gz": (_truncated_gz, "cannot read IDX"),
    "wrong magic": (_wrong_magic, "magic number 0x00000803"),
    "npz wrong shape": (
        lambda p: _npz(p, x_train=np.zeros((20, 784), np.uint8)),
        "shape (20, 784)",
    ),
    "npz float images": (
        lambda p: _npz(p, x_test=np.zeros((10, 28, 28), np.float32)),
        "dtype float32",
    ),
    "npz label count": (
        lambda p: _npz(p, y_train=np.zeros(19, np.uint8)),
        "20 train images but 19",
    ),
    "npz labels out of range": (lambda p: _npz(p, y_test=np.full(10, 10, np.int64)), "0..9"),
    "npz pixels out of range": (
        lambda p: _npz(p, x_train=np.full((20, 28, 28), 256, np.int32)),
        "0..255",
    ),
    "npz missing arrays": (_npz_missing_arrays, "no array(s) y_train, x_test, y_test"),
    "pickled npz": (_pickled_npz, "allow_pickle"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_data_raises_data_error_naming_the_path(tmp_path, case):
    make, problem = BAD[case]
    source, named = make(tmp_path)
    with pytest.raises(DataError) as caught:
        load_mnist(source)
    message = str(caught.value)
    assert f"data: {named}: " in message
    assert problem in message
    assert "\n" not in message and message.endswith("a folder of IDX files")


@pytest.mark.parametrize("gz", [True, False])
def test_lying_header_fails_fast_without_allocating(tmp_path, gz):
    data = struct.pack(">4I", 0x803, 10**9, 28, 28) + bytes(28 * 28 * 3)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    start = time.perf_counter()
    with pytest.raises(DataError, match="1000000000 images") as caught:
        read_idx(path, "images")
    assert time.perf_counter() - start < 1.0
    assert str(path) in str(caught.value)


def test_pickled_npz_is_never_unpickled(tmp_path, monkeypatch):
    path, _ = _pickled_npz(tmp_path)

    def forbidden(*args, **kwargs):
        raise AssertionError("vae.data unpickled a file")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    with pytest.raises(DataError, match="Object arrays cannot be loaded"):
        load_raw_mnist(path)


# --- fuzzing --------------------------------------------------------------------


@st.composite
def idx_files(draw):
    """(kind, bytes): random bytes, or a valid IDX file mutated, maybe gzipped."""
    kind = draw(st.sampled_from(["images", "labels"]))
    if draw(st.booleans()):
        data = bytearray(draw(st.binary(max_size=64)))
    else:
        n = draw(st.integers(0, 3))
        shape = (n, 28, 28) if kind == "images" else (n,)
        data = bytearray(idx_bytes(np.full(shape, 7, np.uint8)))
        for _ in range(draw(st.integers(0, 3))):  # overwrite bytes, mostly in the header
            at = draw(st.integers(0, min(len(data), 24) - 1))
            data[at] = draw(st.integers(0, 255))
        data = data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data
        data += draw(st.binary(max_size=8))
    return kind, gzip.compress(bytes(data)) if draw(st.booleans()) else bytes(data)


@settings(max_examples=100, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(idx_files())
def test_fuzzed_idx_gives_valid_array_or_data_error(case):
    kind, data = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f"
        path.write_bytes(data)
        try:
            array = read_idx(path, kind)
        except DataError as err:
            assert str(path) in str(err) and "\n" not in str(err)
            return
    assert array.dtype == np.uint8
    assert array.shape[1:] == ((28, 28) if kind == "images" else ())


def _valid_npz_bytes():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **small_arrays(2, 1))
    return buffer.getvalue()


@settings(max_examples=100, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_npz_gives_valid_arrays_or_data_error(data):
    blob = bytearray(_valid_npz_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.npz"
        path.write_bytes(bytes(blob))
        try:
            loaded = load_raw_mnist(path)
        except DataError as err:
            assert str(path) in str(err) and "\n" not in str(err)
            return
    for a in flat(loaded):
        assert a.dtype == np.uint8
    assert loaded[0][0].shape[1:] == (28, 28)


# Whole .npz archives, well-formed as zips, with arrays of any dtype, shape and
# value: the byte-level fuzzing above mostly breaks the zip's checksums, this
# reaches the checks of what the arrays hold.
_NPZ_DTYPES = ["uint8", "int8", "int64", "uint16", "float32", "bool", "complex64", "<U2", "object"]


@st.composite
def npz_contents(draw):
    """A valid Keras-layout archive with 0 to 3 of its arrays replaced, dropped or added."""
    arrays = {key: a for key, a in small_arrays(3, 2, seed=draw(st.integers(0, 9))).items()}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*NAMES, "extra"]))
        if draw(st.integers(0, 4)) == 0:
            arrays.pop(key, None)
            continue
        n = draw(st.integers(0, 3))
        shape = draw(
            st.sampled_from([(n, 28, 28), (n,), (n, 784), (n, 28, 27), (n, 28, 28, 1), ()])
        )
        dtype = draw(st.sampled_from(_NPZ_DTYPES))
        low, high = draw(st.sampled_from([(0, 10), (0, 256), (-3, 3), (250, 300)]))
        values = np.random.default_rng(draw(st.integers(0, 2**16))).integers(low, high, shape)
        arrays[key] = values.astype(dtype)
    return arrays


@settings(max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(npz_contents())
def test_any_npz_content_gives_valid_arrays_or_data_error(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # object arrays are pickled: the loader must refuse them
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mnist.npz"
        path.write_bytes(buffer.getvalue())
        try:
            (x_train, y_train), (x_test, y_test) = load_raw_mnist(path)
        except DataError as err:
            assert str(err).startswith(f"data: {path}: ") and "\n" not in str(err)
            return
    for x, y in [(x_train, y_train), (x_test, y_test)]:
        assert x.dtype == y.dtype == np.uint8
        assert x.shape[1:] == (28, 28) and y.shape == (len(x),) and len(x) > 0
        assert y.max() <= 9
    event("loaded")
