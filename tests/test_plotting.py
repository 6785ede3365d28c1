import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from vae.models import build_cnn_vae, build_mlp_vae
from vae.plotting import (
    decode_grid,
    grid_shape,
    interpolate,
    plot_architecture,
    plot_digit_manifold,
    plot_interpolation,
    plot_reconstructions,
    plot_results,
    plot_samples,
    sample_prior,
    save_gif,
    tile,
    to_pixels,
)


def _coordinate_decoder(latent_dim):
    """A decoder whose pixel 0 shows z[0], pixel 1 shows z[1] and pixel 2 the rest."""
    z = keras.Input(shape=(latent_dim,))
    dense = keras.layers.Dense(784, use_bias=False)
    decoder = keras.Model(z, dense(z))
    kernel = np.zeros((latent_dim, 784), "float32")
    kernel[0, 0] = kernel[1, 1] = 1.0
    kernel[2:, 2] = 1.0
    dense.set_weights([kernel])
    return decoder


@pytest.mark.parametrize("latent_dim", [2, 5])
def test_grid_tile_at_row_i_column_j_is_decoded_from_x_j_and_y_i(latent_dim):
    image, grid_x, grid_y = decode_grid(_coordinate_decoder(latent_dim), n=4, z_range=3.0)
    assert image.shape == (4 * 28, 4 * 28)
    np.testing.assert_allclose(grid_x, [-3, -1, 1, 3])
    np.testing.assert_allclose(grid_y, [3, 1, -1, -3])  # high z[1] at the top, as in the seeds
    for i in range(4):
        for j in range(4):
            tile = image[i * 28 : (i + 1) * 28, j * 28 : (j + 1) * 28].ravel()
            assert tile[0] == pytest.approx(grid_x[j]) and tile[1] == pytest.approx(grid_y[i])
            assert tile[2] == 0.0  # dimensions past the first two held at the prior mean


def _linear_vae(latent_dim=3, seed=0):
    """An encoder whose z_mean is a fixed linear map of the pixels, the linear decoder back,
    and the two matrices: the reference the pictures are checked against."""
    rng = np.random.default_rng(seed)
    down = rng.normal(0, 0.05, (784, latent_dim)).astype("float32")
    up = rng.normal(0, 1.0, (latent_dim, 784)).astype("float32")
    x = keras.Input(shape=(784,))
    z_mean = keras.layers.Dense(latent_dim, use_bias=False)
    encoder = keras.Model(x, [z_mean(x), z_mean(x), z_mean(x)])
    z = keras.Input(shape=(latent_dim,))
    out = keras.layers.Dense(784, use_bias=False)
    decoder = keras.Model(z, out(z))
    z_mean.set_weights([down])
    out.set_weights([up])
    return encoder, decoder, down, up


@pytest.mark.parametrize("logits", [False, True])
def test_reconstructions_are_decoded_latent_means_under_their_digits(logits, mnist_flat, tmp_path):
    (_, _), (x_test, _) = mnist_flat
    encoder, decoder, down, up = _linear_vae()
    originals, reconstructions = plot_reconstructions(
        encoder, decoder, x_test, tmp_path / "r.png", n=8, logits=logits
    )
    expected = x_test[:8] @ down @ up
    if logits:
        expected = 1 / (1 + np.exp(-expected))
    np.testing.assert_array_equal(originals, x_test[:8])
    np.testing.assert_allclose(reconstructions, expected, rtol=1e-4, atol=1e-4)
    with Image.open(tmp_path / "r.png") as picture:  # two rows of eight digits
        width, height = picture.size
        assert 2.5 < width / height < 5.5


def test_interpolation_walks_the_straight_line_between_two_latent_means(mnist_flat, tmp_path):
    (_, _), (x_test, y_test) = mnist_flat
    start, end = x_test[0], x_test[int(np.argmax(y_test != y_test[0]))]
    encoder, decoder, down, up = _linear_vae()
    z, _ = interpolate(encoder, decoder, start, end, steps=5)
    np.testing.assert_allclose(z[0], start @ down, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z[-1], end @ down, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z[2], (z[0] + z[-1]) / 2, rtol=1e-5, atol=1e-6)
    digits = plot_interpolation(encoder, decoder, start, end, tmp_path / "i.png", steps=5)
    np.testing.assert_allclose(digits, z @ up, rtol=1e-4, atol=1e-4)
    assert (tmp_path / "i.png").stat().st_size > 1000


def test_the_manifold_shows_a_progress_bar_unless_verbose_is_0(tmp_path, capsys):
    decoder = _coordinate_decoder(2)
    plot_digit_manifold(decoder, tmp_path / "shown.png", n=30, batch_size=300)
    assert "3/3" in capsys.readouterr().out  # Keras's bar over the 900 digits in 3 batches
    plot_digit_manifold(decoder, tmp_path / "quiet.png", n=30, batch_size=300, verbose=0)
    assert capsys.readouterr().out == ""
    assert (tmp_path / "quiet.png").stat().st_size > 1000


@pytest.mark.parametrize("build,latent_dim", [(build_mlp_vae, 2), (build_cnn_vae, 3)])
def test_plot_results_writes_both_pictures(build, latent_dim, tmp_path):
    encoder, decoder, _ = build(latent_dim=latent_dim)
    shape = encoder.input.shape[1:]
    x = np.random.default_rng(0).uniform(size=(50, *shape)).astype("float32")
    y = np.arange(50) % 10
    plot_results((encoder, decoder), (x, y), model_name=str(tmp_path / "vae"))
    for name in ("vae_mean.png", "digits_over_latent.png"):
        with Image.open(tmp_path / "vae" / name) as picture:
            assert min(picture.size) > 500


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="needs Graphviz's dot (apt-get install graphviz)"
)
def test_model_diagrams_are_drawn(tmp_path):
    encoder, decoder, _ = build_mlp_vae()
    written = plot_architecture(encoder, decoder, str(tmp_path / "vae_mlp"))
    assert [p.rsplit("/", 1)[1] for p in written] == [
        "vae_mlp_encoder.png",
        "vae_mlp_decoder.png",
        "vae_mlp.png",
    ]
    for path in written:
        with Image.open(path) as picture:
            assert picture.size[1] > 200


def test_missing_graphviz_is_one_warning_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` to be found
    encoder, decoder, _ = build_mlp_vae()
    with pytest.warns(UserWarning, match="model diagrams skipped") as caught:
        assert plot_architecture(encoder, decoder, str(tmp_path / "vae_mlp")) == []
    assert len(caught) == 1


@pytest.mark.parametrize(
    "n,shape",
    [(50, (5, 10)), (16, (4, 4)), (100, (10, 10)), (30, (3, 10)), (7, (1, 7)), (12, (2, 10))],
)
def test_grid_shapes(n, shape):
    assert grid_shape(n) == shape


def test_tile_puts_digit_i_at_row_i_div_columns_and_leaves_empty_cells_black():
    digits = np.arange(7)[:, None, None] * np.ones((7, 28, 28))
    image = tile(digits.reshape(7, 784), 2, 4)
    assert image.shape == (56, 112)
    for i in range(8):
        cell = image[(i // 4) * 28 : (i // 4 + 1) * 28, (i % 4) * 28 : (i % 4 + 1) * 28]
        assert np.all(cell == (i if i < 7 else 0))


def test_tile_keeps_colour_and_the_shape_of_flat_rgb_images():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(5, 12, 20, 3))
    image = tile(images.reshape(5, -1), 2, 3, image_shape=(12, 20, 3))
    assert image.shape == (24, 60, 3)
    for i in range(5):
        np.testing.assert_array_equal(
            image[(i // 3) * 12 : (i // 3 + 1) * 12, (i % 3) * 20 : (i % 3 + 1) * 20], images[i]
        )
    with pytest.raises(ValueError, match="image_shape"):
        tile(images.reshape(5, -1), 2, 3)  # 720 pixels are no square grey image


def test_without_labels_the_latent_means_have_one_colour_and_the_title_says_why(
    tmp_path, monkeypatch
):
    import vae.plotting

    drawn = []
    finish = vae.plotting._finish
    monkeypatch.setattr(
        vae.plotting,
        "_finish",
        lambda figure, *args: (drawn.append(figure.axes[0]), finish(figure, *args)),
    )
    encoder, _, _ = build_mlp_vae(seed=0)
    x = np.random.default_rng(0).uniform(size=(200, 784)).astype("float32")
    vae.plotting.plot_latent_means(encoder, x, None, tmp_path / "a.png", verbose=0)
    vae.plotting.plot_latent_means(
        encoder,
        x,
        np.arange(200) % 3,
        tmp_path / "b.png",
        verbose=0,
        class_names=["cat", "dog", "owl"],
    )
    unlabelled, labelled = drawn
    assert len(unlabelled.collections) == 1 and unlabelled.get_legend() is None
    assert "no labels" in unlabelled.get_title()
    assert len(labelled.collections) == 3
    assert [t.get_text() for t in labelled.get_legend().get_texts()] == ["cat", "dog", "owl"]
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_to_pixels_is_the_sigmoid_of_logits_without_overflow():
    logits = np.array([-1000.0, -30.0, -2.0, 0.0, 2.0, 30.0, 1000.0], "float32")
    with np.errstate(over="raise"):
        pixels = to_pixels(logits, logits=True)
    expected = np.exp(-np.logaddexp(0, -logits.astype("float64")))
    np.testing.assert_allclose(pixels, expected, rtol=1e-6, atol=1e-30)
    np.testing.assert_array_equal(to_pixels(logits[2:5] / 10), logits[2:5] / 10)


def test_samples_come_from_the_prior_and_repeat_with_the_seed():
    z, digits = sample_prior(_coordinate_decoder(2), 4000, seed=1)
    np.testing.assert_allclose(z.mean(0), 0, atol=0.06)
    np.testing.assert_allclose(z.std(0), 1, atol=0.05)
    np.testing.assert_array_equal(digits[:, :2], z)  # decoded from exactly those z
    np.testing.assert_array_equal(sample_prior(_coordinate_decoder(2), 5, seed=1)[0], z[:5])


def test_plot_samples_draws_a_5_by_10_grid_of_50_digits(tmp_path):
    z = keras.Input(shape=(3,))
    decoder = keras.Model(z, keras.layers.Dense(784, activation="sigmoid")(z))
    digits = plot_samples(decoder, 50, tmp_path / "samples.png", seed=0)
    assert digits.shape == (50, 784) and digits.min() >= 0 and digits.max() <= 1
    with Image.open(tmp_path / "samples.png") as picture:
        width, height = picture.size
    assert 1.6 < width / height < 2.4  # 10 columns, 5 rows
    np.testing.assert_array_equal(plot_samples(decoder, 50, tmp_path / "again.png", seed=0), digits)


def test_logits_decoder_samples_are_probabilities(tmp_path):
    z = keras.Input(shape=(2,))
    logits = keras.layers.Dense(
        784, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(-2.0)
    )(z)
    digits = plot_samples(keras.Model(z, logits), 4, tmp_path / "s.png", logits=True)
    np.testing.assert_allclose(digits, 1 / (1 + np.exp(2.0)), rtol=1e-6)


def test_gif_has_one_frame_per_picture(tmp_path):
    frames = []
    for i in range(4):
        frames.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((20, 20), 60 * i, np.uint8)).save(frames[-1])
    save_gif(frames, tmp_path / "a.gif", duration=100)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 4
        gif.seek(3)
        assert np.asarray(gif.convert("L"))[0, 0] == 180
