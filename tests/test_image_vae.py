"""The VAE for photographs: its discretized logistic, its depth, and examples/vae_images.py."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import logistic
from test_examples import assert_same_model, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_photo_crops import write_crops  # noqa: E402
from pillow_modes import write_every_pillow_mode  # noqa: E402

LEVELS = np.arange(256, dtype=np.float32) / 255


@pytest.mark.parametrize("mean, scale", [(0.3, 0.1), (0.0, 0.01), (0.9, 1.0), (0.5, 0.002)])
def test_the_discretized_logistic_is_the_logistic_mass_of_each_level(mean, scale):
    import keras

    from vae.losses import DiscretizedLogistic

    likelihood = DiscretizedLogistic(1)
    likelihood.log_scale.assign([math.log(scale)])
    x = LEVELS[:, None, None, None]  # the 256 levels, one 1x1 image each
    log_p = keras.ops.convert_to_numpy(likelihood(x, np.full_like(x, mean)))
    # The same masses from SciPy's logistic CDF in float64: bin edges halfway
    # between levels, the first and last bins open-ended.
    edges = logistic.cdf(LEVELS[:-1].astype(np.float64) + 0.5 / 255, loc=mean, scale=scale)
    with np.errstate(divide="ignore"):  # masses that round to 0 in float64: log 0
        expected = np.log(np.diff(np.concatenate([[0.0], edges, [1.0]])))
    assert abs(np.exp(log_p).sum() - 1) < 1e-5  # a probability over the 256 levels
    likely = expected > -10
    np.testing.assert_allclose(log_p[likely], expected[likely], atol=2e-4)


@pytest.mark.parametrize("side, stages, latent", [(32, 3, 32), (64, 4, 128), (128, 5, 512)])
def test_the_network_is_as_deep_as_the_image(side, stages, latent):
    from vae.models import build_image_vae

    encoder, decoder, vae = build_image_vae((side, side, 3), seed=0)
    convolutions = [layer for layer in encoder.layers if layer.name.endswith("_conv")]
    assert len(convolutions) == stages
    assert [layer.filters for layer in convolutions] == [min(32 * 2**i, 256) for i in range(stages)]
    assert convolutions[-1].output.shape[1:3] == (4, 4)  # the map is 4x4 at the bottom
    assert encoder.output[0].shape == (None, latent)
    assert decoder.output.shape == (None, side, side, 3)
    assert vae.architecture["builder"] == "build_image_vae"
    with pytest.raises(ValueError, match="divisible by 16"):
        build_image_vae((60, 64, 3))


def test_the_learned_scale_is_saved_and_loaded_with_the_weights(tmp_path):
    from vae.models import build_image_vae
    from vae.weights import load_model, save_weights

    _, decoder, vae = build_image_vae((32, 32, 3), latent_dim=8, seed=0)
    vae.reconstruction.log_scale.assign([-1.0, -2.0, -3.0])
    save_weights(vae, tmp_path / "images.weights.h5")
    _, reloaded_decoder, reloaded, record = load_model(tmp_path / "images.weights.h5")
    assert record["builder"] == "build_image_vae"
    np.testing.assert_array_equal(reloaded.reconstruction.log_scale.numpy(), [-1.0, -2.0, -3.0])
    z = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    np.testing.assert_allclose(
        reloaded_decoder.predict(z, verbose=0), decoder.predict(z, verbose=0)
    )


def _bits(stdout):
    return float(re.search(r"held-out bits per dimension: ([\d.]+)", stdout).group(1))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos") / "photos"
    write_crops(folder, 120, 32, seed=0)
    return folder


def _flags(photos, out):
    return ["--data", str(photos), "--batch-size", "16", "--seed", "1", "--out", str(out)]


def test_vae_images_trains_from_a_folder_below_8_bits_and_reloads(photos, tmp_path):
    common = _flags(photos, tmp_path)
    out = run(
        "vae_images.py",
        *common,
        "--epochs",
        "6",
        "--learning-rate",
        "3e-3",
        "--samples",
        "4",
        cwd=tmp_path,
        record=tmp_path / "trained.npz",
    )
    assert "found 120 images in" in out and "108 for training, 12 held out" in out
    trained = _bits(out)
    # Below the 8 bits of a uniform guess over the 256 levels (the untrained
    # model: about 8.6).
    assert trained < 7.9
    for picture in ("reconstructions.png", "samples.png", "vae_mean.png"):
        assert (tmp_path / "vae_images" / picture).stat().st_size > 0
    weights = tmp_path / "vae_images_photos.h5"
    run("vae_images.py", *common, "-w", str(weights), cwd=tmp_path, record=tmp_path / "again.npz")
    assert_same_model(tmp_path / "again.npz", tmp_path / "trained.npz")


def test_a_folder_of_every_pillow_mode_trains_and_a_truncated_photo_in_it_is_named(
    photos, tmp_path
):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted(photos.iterdir())[:40]:
        (folder / path.name).write_bytes(path.read_bytes())
    # L, LA, P, RGBA, 16-bit grey, CMYK and EXIF-turned files of one more crop,
    # and two files that are not images.
    modes = write_every_pillow_mode(folder, np.asarray(Image.open(folder / "crop_000039.png")))
    # Its header whole, so it is found when its batch is decoded, in training.
    Image.open(folder / "crop_000000.png").save(folder / "cut.jpg", quality=95)
    (folder / "cut.jpg").write_bytes((folder / "cut.jpg").read_bytes()[:-400])
    weights = tmp_path / "vae_images_photos.h5"
    weights.write_bytes(b"an earlier run's weights")
    common = _flags(folder, tmp_path)
    failed = subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "examples" / "vae_images.py"), *common],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
        cwd=tmp_path,
    )
    assert failed.returncode == 1
    line = failed.stderr.strip().splitlines()[-1]
    assert "cut.jpg: cannot read image" in line and "--skip-bad-images" in line, line
    assert weights.read_bytes() == b"an earlier run's weights"
    out = run("vae_images.py", *common, "--epochs", "1", "--skip-bad-images", cwd=tmp_path)
    assert f"found {40 + len(modes) + 1} images in" in out
    assert "passed over 1 unreadable image(s): " in out and "cut.jpg" in out
