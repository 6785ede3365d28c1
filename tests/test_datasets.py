"""Tests of vae.data.load_images on real data: MNIST, Fashion-MNIST, images written from them."""

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import FASHION_DIR, SHARED_MNIST
from PIL import Image

from vae.data import DATASETS, DataError, Images, load_images, load_mnist, load_raw_mnist

ROOT = Path(__file__).resolve().parents[1]
IDX_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
# Written out here, not imported: the test checks the module's copy.
FASHION_NAMES = (
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
)
DIGIT_NAMES = tuple("0123456789")


needs_mnist = pytest.mark.skipif(
    not all((SHARED_MNIST / (name + ".gz")).is_file() for name in IDX_NAMES),
    reason=f"real MNIST IDX files not found in {SHARED_MNIST}",
)
needs_fashion = pytest.mark.skipif(
    FASHION_DIR is None,
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(autouse=True)
def no_vae_data(monkeypatch):
    monkeypatch.delenv("VAE_DATA", raising=False)


@pytest.fixture(scope="module")
def digits(mnist_path):
    """60 real digits, uint8 (60, 28, 28), six of each class from the test set, and their labels."""
    _, (x, y) = load_raw_mnist(mnist_path)
    chosen = np.concatenate([np.flatnonzero(y == digit)[:6] for digit in range(10)])
    return x[chosen], y[chosen].astype(np.int64)


def write_folder(folder, images, labels=None, suffix=".png", **save):
    """Saves each array as an image, under folder/<label>/ or flat; returns the folder."""
    for i, a in enumerate(images):
        where = folder if labels is None else folder / str(labels[i])
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(where / f"{i:03d}{suffix}", **save)
    return folder


def together(data):
    """All images (uint8, exact) and labels of an Images, train and test joined."""
    x = np.concatenate([data.x_train, data.x_test])
    as_bytes = np.rint(x * 255).astype(np.uint8)
    # Exact to 1/255: the float values are the bytes divided by 255, nothing else.
    np.testing.assert_array_equal(x, as_bytes / np.float32(255))
    y = None if data.y_train is None else np.concatenate([data.y_train, data.y_test])
    return as_bytes, y


def same_multiset(got, expected):
    """The same images (and labels), whatever order the split put them in."""

    def key(x, y):
        return sorted(((-1 if y is None else int(y[i])), x[i].tobytes()) for i in range(len(x)))

    return key(*got) == key(*expected)


# --- real data sets ----------------------------------------------------------------


@needs_mnist
def test_mnist_idx_folder_equals_load_mnist():
    data = load_images(SHARED_MNIST)
    assert isinstance(data, Images)
    assert data.x_train.shape == (60000, 28, 28, 1) and data.x_test.shape == (10000, 28, 28, 1)
    assert data.image_shape == (28, 28, 1)
    assert data.x_train.dtype == data.x_test.dtype == np.float32
    assert data.y_train.dtype == data.y_test.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert data.class_names == DIGIT_NAMES
    (x_train, y_train), (x_test, y_test) = load_mnist(SHARED_MNIST)
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.x_test, x_test)
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.y_test, y_test)
    assert abs(data.x_train.mean() - 0.1307) < 5e-4  # MNIST's published mean


@needs_fashion
@needs_mnist
def test_fashion_mnist_idx_folder():
    data = load_images(FASHION_DIR, dataset="fashion_mnist")
    assert data.x_train.shape == (60000, 28, 28, 1) and data.x_test.shape == (10000, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert 0.0 == data.x_train.min() and data.x_train.max() == 1.0
    # Its published balance (6,000 / 1,000 of each class), mean and first labels.
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert abs(data.x_train.mean() - 0.2860) < 5e-4
    assert data.class_names == FASHION_NAMES
    assert data.class_names[data.y_train[0]] == "Ankle boot"
    mnist = load_images(SHARED_MNIST)
    assert not np.array_equal(data.x_train, mnist.x_train)
    assert not np.array_equal(data.y_train, mnist.y_train)
    # `dataset` only names the classes of a path: the pixels are the folder's.
    as_digits = load_images(FASHION_DIR)
    assert as_digits.class_names == DIGIT_NAMES
    np.testing.assert_array_equal(as_digits.x_test, data.x_test)


# --- folders of images --------------------------------------------------------------


def test_png_class_folders_give_the_digits_and_labels(tmp_path, digits):
    x, y = digits
    data = load_images(write_folder(tmp_path / "png", x, y), validation_split=0.25, seed=3)
    assert data.image_shape == (28, 28, 1)
    assert len(data.x_train) == 45 and len(data.x_test) == 15
    assert len(data.y_train) == 45 and len(data.y_test) == 15
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.class_names == DIGIT_NAMES  # the folder names, sorted
    assert same_multiset(together(data), (x, y))


def test_class_indices_follow_sorted_folder_names(tmp_path, digits):
    x, y = digits
    names = np.array(["zebra", "apple", "mango"])[y % 3]  # not the digits' order
    for i, name in enumerate(names):
        write_folder(tmp_path / "f" / name, x[i : i + 1], suffix=f"-{i}.png")
    data = load_images(tmp_path / "f")
    assert data.class_names == ("apple", "mango", "zebra")
    index = {"apple": 0, "mango": 1, "zebra": 2}
    assert same_multiset(together(data), (x, np.array([index[n] for n in names])))


def test_flat_folder_has_no_labels(tmp_path, digits):
    x, _ = digits
    data = load_images(write_folder(tmp_path / "flat", x))
    assert data.y_train is None and data.y_test is None and data.class_names is None
    assert len(data.x_train) + len(data.x_test) == 60
    assert same_multiset(together(data), (x, None))


def test_colour_images_make_every_image_rgb(tmp_path, digits):
    x, y = digits
    red = np.zeros((*x.shape, 3), np.uint8)
    red[..., 0] = x  # the digit in the red channel alone
    folder = tmp_path / "mixed"
    # Grey first in reading order (digits 0..4), colour after (5..9): the
    # first image alone does not decide.
    write_folder(folder, x[:30], y[:30])
    for i in range(30, 60):
        (folder / str(y[i])).mkdir(exist_ok=True)
        Image.fromarray(red[i]).save(folder / str(y[i]) / f"red{i}.png")
    data = load_images(folder, validation_split=0.5)
    assert data.image_shape == (28, 28, 3)
    expected = np.concatenate([np.repeat(x[:30, ..., None], 3, axis=3), red[30:]])
    assert same_multiset(together(data), (expected, y))


def test_other_png_modes_convert_sensibly(tmp_path, digits):
    x, _ = digits
    a = x[0]
    alpha = np.full_like(a, 128)
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.fromarray(np.stack([a, alpha], axis=-1), "LA").save(grey / "la.png")
    Image.fromarray(a).convert("P").save(grey / "palette.png")
    Image.fromarray(a.astype(np.uint16) * 257).save(grey / "sixteen.png")  # 16-bit grey
    Image.fromarray(a).save(grey / "plain.png")
    assert Image.open(grey / "sixteen.png").mode.startswith("I")
    assert Image.open(grey / "palette.png").mode == "P"
    data = load_images(grey)
    assert data.image_shape == (28, 28, 1)  # a grey palette is grey; alpha dropped
    got, _ = together(data)
    for image in got:
        np.testing.assert_array_equal(image[..., 0], a)

    colour = tmp_path / "colour"
    colour.mkdir()
    rgb = np.stack([a, 255 - a, a // 2], axis=-1)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(colour / "rgba.png")
    Image.fromarray(rgb).save(colour / "rgb.png")
    data = load_images(colour)
    assert data.image_shape == (28, 28, 3)
    got, _ = together(data)
    for image in got:
        np.testing.assert_array_equal(image, rgb)


def test_jpeg_folders_load(tmp_path, digits):
    x, y = digits
    data = load_images(write_folder(tmp_path / "jpg", x, y, suffix=".jpg", quality=95))
    assert data.image_shape == (28, 28, 1)
    got, labels = together(data)
    # JPEG is lossy: match each image to its digit by nearest original.
    errors = np.abs(got[:, None, ..., 0].astype(float) - x[None].astype(float)).mean(axis=(2, 3))
    nearest = errors.argmin(axis=1)
    assert sorted(nearest.tolist()) == list(range(60))
    np.testing.assert_array_equal(labels, y[nearest])
    assert errors.min(axis=1).max() < 8  # grey levels, of 255

    rgb = np.repeat(x[..., None], 3, axis=3)
    rgb[..., 2] = 0  # yellow digits
    data = load_images(write_folder(tmp_path / "jpg_rgb", rgb, suffix=".jpeg", quality=95))
    assert data.image_shape == (28, 28, 3) and data.y_train is None


def test_image_size_resizes_and_allows_mixed_sizes(tmp_path, digits):
    x, y = digits
    folder = write_folder(tmp_path / "sizes", x, y)
    # One digit enlarged: without image_size this folder is refused (see the bad cases).
    Image.fromarray(x[0]).resize((40, 36)).save(folder / str(y[0]) / "big.png")
    data = load_images(folder, image_size=(14, 21))
    assert data.image_shape == (14, 21, 1)
    assert len(data.x_train) + len(data.x_test) == 61
    # Bilinear resizing keeps the ink: the mean grey level barely moves.
    everything = np.concatenate([data.x_train, data.x_test])
    assert abs(everything.mean() - x.mean() / 255) < 0.01
    assert 0 <= everything.min() and everything.max() <= 1


def test_validation_split_sizes_and_seed(tmp_path, digits):
    x, y = digits
    folder = write_folder(tmp_path / "split", x, y)
    for split, n_test in [(0.1, 6), (0.5, 30), (0.001, 1), (0.999, 59)]:
        data = load_images(folder, validation_split=split)
        assert (len(data.x_test), len(data.x_train)) == (n_test, 60 - n_test)
        assert len(data.y_test) == n_test
    first, again = load_images(folder, seed=7), load_images(folder, seed=7)
    for a, b in zip(first[:4], again[:4]):
        np.testing.assert_array_equal(a, b)
    other = load_images(folder, seed=8)
    assert not np.array_equal(first.x_test, other.x_test)
    np.testing.assert_array_equal(load_images(folder).x_test, load_images(folder, seed=0).x_test)
    for bad in (0, 1, -0.1, 1.5, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="validation_split"):
            load_images(folder, validation_split=bad)


# --- generalized .npz ----------------------------------------------------------------


def test_npz_of_any_size_grey_uint8_with_labels(tmp_path, digits):
    x, y = digits
    crops = x[:, 2:22, 1:25]  # 20x24
    path = tmp_path / "crops.npz"
    np.savez(path, x_train=crops[:40], y_train=y[:40], x_test=crops[40:], y_test=y[40:])
    data = load_images(path)
    assert data.image_shape == (20, 24, 1)
    np.testing.assert_array_equal(data.x_train[..., 0], crops[:40] / np.float32(255))
    np.testing.assert_array_equal(data.y_test, y[40:])
    assert data.y_train.dtype == np.int64 and data.class_names == DIGIT_NAMES
    assert load_images(path, dataset="fashion_mnist").class_names == FASHION_NAMES
    # Keras's CIFAR layout of labels, (n, 1), and labels beyond 9.
    np.savez(
        path,
        x_train=crops[:40],
        y_train=(y[:40] + 2)[:, None],
        x_test=crops[40:],
        y_test=(y[40:] + 2)[:, None],
    )
    data = load_images(path)
    np.testing.assert_array_equal(data.y_train, y[:40] + 2)
    assert data.class_names == tuple(str(i) for i in range(12))


def test_npz_float_rgb_without_labels(tmp_path, digits):
    x, _ = digits
    rgb = np.stack([x, x // 2, 255 - x], axis=-1).astype(np.float64) / 255
    path = tmp_path / "rgb.npz"
    np.savez(path, x_train=rgb[:50], x_test=rgb[50:])
    data = load_images(path)
    assert data.image_shape == (28, 28, 3) and data.x_train.dtype == np.float32
    assert data.y_train is None and data.y_test is None and data.class_names is None
    np.testing.assert_array_equal(data.x_test, rgb[50:].astype(np.float32))
    resized = load_images(path, image_size=(7, 7))
    assert resized.x_train.shape == (50, 7, 7, 3) and resized.x_test.shape == (10, 7, 7, 3)
    # The same digits through a PNG folder resize alike (Pillow's bilinear filter
    # both ways; 8-bit rounding apart): pair each image with its nearest.
    folder = write_folder(tmp_path / "rgb_png", (rgb * 255).round().astype(np.uint8))
    from_png = load_images(folder, image_size=(7, 7), validation_split=0.5)
    a = np.concatenate([from_png.x_train, from_png.x_test])
    b = np.concatenate([resized.x_train, resized.x_test])
    gaps = np.abs(a[:, None] - b[None]).max(axis=(2, 3, 4))
    assert sorted(gaps.argmin(axis=1).tolist()) == list(range(60))
    assert gaps.min(axis=1).max() <= 1 / 255 + 1e-6


@needs_mnist
def test_idx_folder_honours_image_size():
    data = load_images(SHARED_MNIST, image_size=(14, 14))
    assert data.x_train.shape == (60000, 14, 14, 1) and data.x_test.shape == (10000, 14, 14, 1)
    assert abs(data.x_train.mean() - 0.1307) < 0.005


# --- no path: MNIST as load_mnist, Fashion-MNIST from Keras -------------------------


def _mnist_npz(tmp_path, digits):
    x, y = digits
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    return path


def test_no_path_mnist_is_load_mnist(tmp_path, digits, monkeypatch):
    monkeypatch.setenv("VAE_DATA", str(_mnist_npz(tmp_path, digits)))
    data = load_images()
    (x_train, y_train), (x_test, y_test) = load_mnist()
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.y_test, y_test)
    assert data.class_names == DIGIT_NAMES
    assert load_images(image_size=(10, 10)).x_test.shape == (20, 10, 10, 1)


def _fake_keras(monkeypatch, load_data):
    keras = types.ModuleType("keras")
    keras.datasets = types.SimpleNamespace(fashion_mnist=types.SimpleNamespace(load_data=load_data))
    monkeypatch.setitem(sys.modules, "keras", keras)


@needs_fashion
def test_no_path_fashion_comes_from_keras_not_vae_data(tmp_path, digits, monkeypatch):
    (x_train, y_train), (x_test, y_test) = load_raw_mnist(FASHION_DIR)
    part = (x_train[:30], y_train[:30]), (x_test[:10], y_test[:10])
    _fake_keras(monkeypatch, lambda: part)
    monkeypatch.setenv("VAE_DATA", str(_mnist_npz(tmp_path, digits)))  # names MNIST: unused
    data = load_images(dataset="fashion_mnist")
    np.testing.assert_array_equal(data.x_train[..., 0], x_train[:30] / np.float32(255))
    np.testing.assert_array_equal(data.y_test, y_test[:10])
    assert data.class_names == FASHION_NAMES


def test_no_path_fashion_offline_says_what_to_do(monkeypatch):
    def offline():
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/...: None -- "
            "[Errno -3] Temporary failure in name resolution"
        )

    _fake_keras(monkeypatch, offline)
    with pytest.raises(DataError) as caught:
        load_images(dataset="fashion_mnist")
    message = str(caught.value)
    assert "\n" not in message
    for words in (
        "Fashion-MNIST could not be downloaded",
        "no sample",
        "MNIST only",
        "--data PATH",
        "dataset-fashion-mnist",
        "Keras caches",
    ):
        assert words in message


def test_a_path_never_imports_keras(tmp_path, digits):
    x, y = digits
    npz = _mnist_npz(tmp_path, digits)
    folder = write_folder(tmp_path / "png", x[:4], y[:4])
    code = (
        "import sys\nfrom vae.data import load_images\n"
        f"load_images({str(npz)!r}); load_images({str(folder)!r}, image_size=(8, 8))\n"
        "assert 'keras' not in sys.modules, 'keras imported'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- bad input ------------------------------------------------------------------------

# Each maker writes a bad source under tmp_path from the real digits and returns
# (what to load, the path the message must name, words of the problem, words of the fix).


def _one_of_each(x, y, n):
    """n real digits of n different classes, 0, 1, ..."""
    return x[::6][:n], y[::6][:n]


def _empty(tmp, x, y):
    (tmp / "empty").mkdir()
    return tmp / "empty", tmp / "empty", "no images", "--data PATH"


def _no_images(tmp, x, y):
    (tmp / "docs" / "sub").mkdir(parents=True)
    (tmp / "docs" / "notes.txt").write_text("not an image\n")
    (tmp / "docs" / ".hidden.png").write_bytes(b"hidden files are skipped")
    write_folder(tmp / "docs" / ".thumbnails", x[:2])  # and so are hidden folders
    return tmp / "docs", tmp / "docs", "no images", "--data PATH"


def _corrupt(tmp, x, y):
    folder = write_folder(tmp / "f", *_one_of_each(x, y, 6))
    bad = folder / "3" / "003.png"
    bad.write_bytes(b"this is not a PNG at all")
    return folder, bad, "cannot read image (UnidentifiedImageError", "replace or remove"


def _truncated(tmp, x, y, suffix=".png"):
    folder = write_folder(tmp / "f", *_one_of_each(x, y, 6), suffix=suffix)
    bad = folder / "4" / f"004{suffix}"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3])  # a header that opens, pixels that end early
    return folder, bad, "cannot read image", "replace or remove"


def _mixed_sizes(tmp, x, y):
    folder = write_folder(tmp / "f", *_one_of_each(x, y, 6))
    bad = folder / "5" / "zz-small.png"  # after 5/005.png: the first of another size
    Image.fromarray(x[0][:20, :18]).save(bad)
    first = folder / "0" / "000.png"
    return folder, bad, f"20x18 pixels (height x width) but {first} is 28x28", "--image-size H W"


def _mixed_layout(tmp, x, y):
    folder = write_folder(tmp / "f", *_one_of_each(x, y, 4))
    Image.fromarray(x[5]).save(folder / "stray.png")
    return folder, folder, "both in itself (stray.png) and in its subfolder", "own"


def _one_image(tmp, x, y):
    folder = write_folder(tmp / "f", x[:1])
    return folder, folder, "only one image", "add images"


def _single_image_file(tmp, x, y):
    write_folder(tmp / "f", x[:1])
    return tmp / "f" / "000.png", tmp / "f" / "000.png", "is a single image", "folder"


def _missing_path(tmp, x, y):
    return tmp / "nowhere", tmp / "nowhere", "no such file", "--data PATH"


def _text_file(tmp, x, y):
    (tmp / "notes.npz").write_text("plain text\n")
    return tmp / "notes.npz", tmp / "notes.npz", "not an .npz", "x_train and x_test"


def _npz(**arrays):
    def make(tmp, x, y):
        real = {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:]}
        real.update(arrays)
        path = tmp / "bad.npz"
        np.savez(path, **{key: a for key, a in real.items() if a is not None})
        return path, path, problem, fix

    problem = arrays.pop("problem")
    fix = arrays.pop("fix", "save x_train and x_test as (n, h, w)")
    return make


BAD = {  # case: maker
    "empty folder": _empty,
    "folder of no images": _no_images,
    "corrupt png": _corrupt,
    "truncated png": _truncated,
    "truncated jpeg": lambda tmp, x, y: _truncated(tmp, x, y, ".jpg"),
    "mixed sizes": _mixed_sizes,
    "images at top and in subfolders": _mixed_layout,
    "one image": _one_image,
    "single image file": _single_image_file,
    "missing path": _missing_path,
    "text file": _text_file,
    "npz without x_test": _npz(x_test=None, y_test=None, problem="no array(s) x_test"),
    "npz wrong ndim": _npz(x_train=np.zeros((40, 784), np.uint8), problem="shape (40, 784)"),
    "npz two channels": _npz(
        x_test=np.zeros((20, 28, 28, 2), np.uint8), problem="x_test has shape (20, 28, 28, 2)"
    ),
    "npz only y_train": _npz(y_test=None, problem="has y_train but no y_test"),
    "npz label count": _npz(
        y_test=np.zeros(19, np.int64), problem="20 images in x_test but 19 labels in y_test"
    ),
    "npz float labels": _npz(y_train=np.zeros(40, np.float32), problem="dtype float32"),
    "npz negative labels": _npz(y_train=np.full(40, -1), problem="labels -1..-1"),
    "npz strings": _npz(x_train=np.full((40, 28, 28), "a"), problem="dtype <U1"),
    "npz pickled objects": _npz(
        x_train=np.array([object()] * 40), problem="Object arrays cannot be loaded"
    ),
    "npz float above 1": _npz(
        x_train=np.full((40, 28, 28), 1.5, np.float32),
        problem="values 1.5..1.5; expected floats in [0, 1]",
    ),
    "npz integers above 255": _npz(
        x_test=np.full((20, 28, 28), 300, np.int16), problem="values 300..300; expected 0..255"
    ),
    "npz NaN": _npz(
        x_train=np.where(np.eye(28, dtype=bool), np.nan, 0.5)[None].repeat(40, 0),
        problem="x_train has NaN values",
    ),
    "npz sizes differ": _npz(
        x_test=np.zeros((20, 14, 14), np.uint8),
        problem="x_train images are 28x28 pixels (height x width) but x_test images 14x14",
        fix="--image-size H W",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_one_line_data_error_naming_the_file(tmp_path, digits, case):
    x, y = digits
    source, named, problem, fix = BAD[case](tmp_path, x, y)
    with pytest.raises(DataError) as caught:
        load_images(source)
    message = str(caught.value)
    assert message.startswith(f"data: {named}: "), message
    assert problem in message, message
    assert fix in message.split("; ")[-1], message  # the fix comes last
    assert "\n" not in message and "Traceback" not in message


def test_sizes_differ_is_fine_with_image_size(tmp_path, digits):
    x, y = digits
    source, *_ = BAD["npz sizes differ"](tmp_path, x, y)
    assert load_images(source, image_size=(28, 28)).x_test.shape == (20, 28, 28, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dataset": "cifar10"},
        {"image_size": (0, 28)},
        {"image_size": (28,)},
        {"image_size": (28.0, 28)},
        {"image_size": "28"},
    ],
)
def test_bad_arguments_are_value_errors(tmp_path, digits, kwargs):
    folder = write_folder(tmp_path / "f", digits[0][:4])
    with pytest.raises(ValueError) as caught:
        load_images(folder, **kwargs)
    assert not isinstance(caught.value, DataError)
    assert list(kwargs)[0] in str(caught.value)


def test_datasets_constant():
    assert DATASETS == ("mnist", "fashion_mnist")


def test_the_command_line_offers_the_datasets_the_loader_knows():
    from vae import cli

    assert cli.DATASETS == DATASETS
