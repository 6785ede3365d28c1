"""The streaming reader of image folders (vae.folders.ImageFolder) on real photographs and digits."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae.data import DataError, load_images, load_raw_mnist
from vae.folders import folder_image_shape, split_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_photo_crops import crops, write_crops  # noqa: E402
from pillow_modes import write_every_pillow_mode  # noqa: E402

core = pytest.mark.core


def _image_folder():
    from vae.folders import ImageFolder

    return ImageFolder


def _streamed(dataset):
    """Every batch of an ImageFolder, joined, as uint8 (exact: the floats are bytes / 255)."""
    x = np.concatenate([dataset[i][0] for i in range(len(dataset))])
    as_bytes = np.rint(x * 255).astype(np.uint8)
    np.testing.assert_array_equal(x, as_bytes / np.float32(255))
    return as_bytes


@pytest.fixture(scope="module")
def labelled_photos(tmp_path_factory):
    """30 colour crops of the shipped photographs, 10 in each of 3 class folders."""
    folder = tmp_path_factory.mktemp("photos")
    for label in ("a", "b", "c"):
        write_crops(folder / label, 10, 32, seed=ord(label))
    return folder


def test_streamed_batches_are_the_in_memory_images_in_the_same_seeded_order(labelled_photos):
    ImageFolder = _image_folder()
    data = load_images(labelled_photos, validation_split=0.2, seed=3)
    split = split_folder(labelled_photos, validation_split=0.2, seed=3)
    assert (len(split.train_files), len(split.test_files)) == (24, 6)
    for files, x, labels, y in (
        (split.train_files, data.x_train, split.train_labels, data.y_train),
        (split.test_files, data.x_test, split.test_labels, data.y_test),
    ):
        stream = ImageFolder(files, batch_size=7, shuffle=False)  # 7: the last batch is short
        assert stream.image_shape == (32, 32, 3) and len(stream) == -(-len(files) // 7)
        np.testing.assert_array_equal(_streamed(stream), np.rint(x * 255).astype(np.uint8))
        np.testing.assert_array_equal(labels, y)
    # Another seed draws other files.
    assert split_folder(labelled_photos, 0.2, seed=4).test_files != split.test_files


def test_every_epoch_reads_every_file_once_in_an_order_that_the_seed_repeats(labelled_photos):
    ImageFolder = _image_folder()
    files = split_folder(labelled_photos, 0.2, seed=0).train_files
    expected = _streamed(ImageFolder(files, batch_size=5, shuffle=False))
    first, again = (ImageFolder(files, batch_size=5, seed=11) for _ in range(2))
    epochs = []
    for stream in (first, again):
        for _ in range(2):
            stream.on_epoch_begin()
            epochs.append(_streamed(stream))
    np.testing.assert_array_equal(epochs[0], epochs[2])  # seed 11, epoch 1, twice
    np.testing.assert_array_equal(epochs[1], epochs[3])
    assert not np.array_equal(epochs[0], epochs[1])  # a new order each epoch
    for got in epochs:  # each a permutation of the files
        assert sorted(map(bytes, got)) == sorted(map(bytes, expected))


def _photo(height, width):
    """A real photograph's pixels, (height, width, 3): a part of a seeded crop."""
    return next(iter(crops(1, max(height, width), seed=5)))[:height, :width]


def test_every_pillow_mode_comes_out_as_the_right_pixels(tmp_path):
    ImageFolder = _image_folder()
    rgb = _photo(24, 40)  # not square: a turned image cannot pass for the upright one
    folder = tmp_path / "modes"
    expected = write_every_pillow_mode(folder, rgb)
    files = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg", ".JPG"))
    stream = ImageFolder(files, batch_size=3, shuffle=False)
    assert stream.image_shape == (24, 40, 3) and len(stream.files) == len(expected) == 7
    got = dict(zip((p.name for p in files), _streamed(stream)))
    for name, pixels in expected.items():
        if name.lower().endswith(".jpg"):  # lossy, but close and upright
            error = np.abs(got[name].astype(float) - pixels.astype(float)).mean()
            assert error < 6, (name, error)
        else:
            np.testing.assert_array_equal(got[name], pixels, err_msg=name)
    # The in-memory reader gives the same pixels, and a folder of both finds the same files.
    data = load_images(folder, validation_split=0.5, seed=0)
    in_memory = np.concatenate([data.x_train, data.x_test])
    assert len(in_memory) == 7
    assert sorted(map(bytes, np.rint(in_memory * 255).astype(np.uint8))) == sorted(
        map(bytes, got.values())
    )


def test_a_grey_folder_stays_grey_and_a_grey_palette_counts_as_grey(tmp_path, mnist_path):
    ImageFolder = _image_folder()
    _, (x, _) = load_raw_mnist(mnist_path)
    Image.fromarray(x[0]).save(tmp_path / "0.png")
    Image.fromarray(x[1]).convert("P").save(tmp_path / "1.png")
    stream = ImageFolder(sorted(tmp_path.iterdir()), batch_size=2, shuffle=False)
    assert stream.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(_streamed(stream)[..., 0], x[:2])


def test_image_size_resizes_and_sizes_that_differ_need_it(tmp_path):
    ImageFolder = _image_folder()
    Image.fromarray(_photo(32, 32)).save(tmp_path / "a.png")
    Image.fromarray(_photo(48, 40)).save(tmp_path / "b.png")
    files = sorted(tmp_path.iterdir())
    with pytest.raises(DataError, match=r"b\.png: image is 48x40 .* --image-size"):
        ImageFolder(files, batch_size=2)
    stream = ImageFolder(files, batch_size=2, image_size=(16, 20), shuffle=False)
    assert stream[0][0].shape == (2, 16, 20, 3)
    expected = Image.fromarray(_photo(48, 40)).resize((20, 16), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(_streamed(stream)[1], np.asarray(expected))


def _truncated_jpeg(path, pixels):
    """A JPEG of `pixels` without its last third: its header whole, its pixel data cut."""
    Image.fromarray(pixels).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def test_a_truncated_image_is_named_when_read_or_skipped_and_counted(tmp_path):
    ImageFolder = _image_folder()
    write_crops(tmp_path, 6, 64, seed=1)
    _truncated_jpeg(tmp_path / "cut.jpg", _photo(64, 64))
    (tmp_path / "fake.png").write_text("this is text, not a PNG")
    files = sorted(tmp_path.iterdir())
    # Not an image at all: found by the header pass, before training.
    with pytest.raises(DataError, match=r"fake\.png: cannot read image .*--skip-bad-images"):
        ImageFolder(files, batch_size=4)
    # Truncated: the header is whole, so it is found when its batch is decoded.
    stream = ImageFolder([f for f in files if f.name != "fake.png"], batch_size=4, shuffle=False)
    assert len(stream.files) == 7
    with pytest.raises(DataError) as raised:
        _streamed(stream)
    message = str(raised.value)
    assert "cut.jpg: cannot read image" in message and "truncated" in message
    assert "\n" not in message
    skipping = ImageFolder(files, batch_size=4, shuffle=False, skip_bad=True)
    assert [p.name for p in skipping.skipped] == ["fake.png"]
    assert len(_streamed(skipping)) == 6
    assert sorted(p.name for p in skipping.skipped) == ["cut.jpg", "fake.png"]


def test_the_header_pass_reads_no_pixels(tmp_path, monkeypatch):
    write_crops(tmp_path, 3, 16, seed=2, image_format="jpg")
    decoded = []
    original = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1) or original(self))
    shape, usable, skipped = folder_image_shape(sorted(tmp_path.iterdir()))
    assert shape == (16, 16, 3) and len(usable) == 3 and not skipped
    assert not decoded


@core
def test_a_model_trains_from_a_streamed_folder(tmp_path):
    import keras

    from vae.models import build_image_vae

    ImageFolder = _image_folder()
    split = split_folder(write_crops(tmp_path, 64, 32, seed=3)[0].parent, 0.25, seed=0)
    train = ImageFolder(split.train_files, batch_size=16, seed=0, workers=2)
    test = ImageFolder(split.test_files, batch_size=16, shuffle=False)
    keras.utils.set_random_seed(0)
    _, _, vae = build_image_vae(train.image_shape, latent_dim=8, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = vae.evaluate(test, verbose=0, return_dict=True)["loss"]
    history = vae.fit(train, epochs=4, verbose=0)
    after = vae.evaluate(test, verbose=0, return_dict=True)["loss"]
    assert np.all(np.isfinite(history.history["loss"]))
    assert after < before
    # The importance-sampled likelihood of the discretized logistic: finite,
    # and above the ELBO of the same draws.
    from vae.evaluation import importance_sampled_log_likelihood

    x = np.concatenate([test[i][0] for i in range(len(test))])
    log_px, elbo = importance_sampled_log_likelihood(vae, x, k=20, verbose=0, return_elbo=True)
    assert np.all(np.isfinite(log_px)) and log_px.mean() > elbo.mean()
