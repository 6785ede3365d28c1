"""The conditional VAE: builder, loss, saving, training on real digits, what the label does,
pictures."""

import keras
import numpy as np
import pytest
from PIL import Image

from vae.conditional import (
    ConditionalVAE,
    build_conditional_vae,
    generate,
    one_hot,
    plot_class_grid,
    plot_class_samples,
)
from vae.models import build_mlp_vae
from vae.weights import WeightsError, load_weights, save_weights

core = pytest.mark.core

TRAIN, TEST = 2000, 1000


def _bce(x, p):
    p = np.clip(p.astype("float64"), 1e-7, 1 - 1e-7)
    return -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1)


def _kl(z_mean, z_log_var):
    z_mean, z_log_var = z_mean.astype("float64"), z_log_var.astype("float64")
    return -0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var)).sum(1)


@pytest.fixture(scope="module")
def digits(mnist_flat):
    (x_train, y_train), (x_test, y_test) = mnist_flat
    return (x_train[:TRAIN], y_train[:TRAIN]), (x_test[:TEST], y_test[:TEST])


@pytest.fixture(scope="module")
def trained(digits):
    """A conditional VAE trained 10 epochs on 2000 real digits; its test losses before and after."""
    (x_train, y_train), (x_test, y_test) = digits
    keras.utils.set_random_seed(0)
    encoder, decoder, vae = build_conditional_vae(seed=0)
    vae.compile(optimizer="adam")
    test = (x_test, one_hot(y_test, 10))
    before = vae.evaluate(test, verbose=0, return_dict=True)
    untrained = _label_and_style_effects(decoder)
    history = vae.fit(
        (x_train, one_hot(y_train, 10)),
        epochs=10,
        batch_size=32,
        validation_data=(test, None),
        verbose=0,
    )
    after = vae.evaluate(test, verbose=0, return_dict=True)
    return {
        "encoder": encoder,
        "decoder": decoder,
        "vae": vae,
        "before": before,
        "after": after,
        "history": history.history,
        "untrained": untrained,
    }


def _label_and_style_effects(decoder, n=20):
    """Mean |pixel change| from swapping the label at a fixed z, and from redrawing z."""
    z, other_z = (
        np.random.default_rng(s).standard_normal((n, 2)).astype("float32") for s in (1, 2)
    )
    by_class = np.stack([generate(decoder, np.full(n, c), z=z) for c in range(10)])
    redrawn = np.stack([generate(decoder, np.full(n, c), z=other_z) for c in range(10)])
    label = np.mean(
        [np.abs(by_class[a] - by_class[b]).mean() for a in range(10) for b in range(10) if a != b]
    )
    return label, np.abs(by_class - redrawn).mean()


# --------------------------------------------------------------------------
# The model


@core
def test_layers_and_shapes(digits):
    (x, y), _ = digits
    encoder, decoder, vae = build_conditional_vae(latent_dim=3)
    assert isinstance(vae, ConditionalVAE) and vae.name == "conditional_vae"
    assert [layer.name for layer in encoder.layers] == [
        "encoder_input",
        "encoder_labels",
        "encoder_concat",
        "encoder_dense",
        "z_mean",
        "z_log_var",
        "z",
    ]
    assert [layer.name for layer in decoder.layers] == [
        "z_sampling",
        "decoder_labels",
        "decoder_concat",
        "decoder_dense",
        "decoder_output",
    ]
    # The label enters the first layer of each: 784 + 10 and 3 + 10 inputs.
    assert encoder.get_layer("encoder_dense").kernel.shape == (794, 512)
    assert decoder.get_layer("decoder_dense").kernel.shape == (13, 512)
    assert decoder.get_layer("decoder_output").activation is keras.activations.sigmoid
    assert vae.num_classes == 10
    labels = one_hot(y[:5], 10)
    outputs = encoder.predict([x[:5], labels], verbose=0)
    assert [o.shape for o in outputs] == [(5, 3)] * 3
    assert decoder.predict([outputs[2], labels], verbose=0).shape == (5, 784)
    assert vae.predict((x[:5], labels), verbose=0).shape == (5, 784)


@core
def test_loss_terms_are_the_reconstruction_of_x_and_the_encoders_kl(digits):
    (x, y), _ = digits
    x, labels = x[:16], one_hot(y[:16], 10)
    encoder, _, vae = build_conditional_vae(seed=1)
    reconstruction = keras.ops.convert_to_numpy(vae((x, labels)))
    recon, kl = (keras.ops.convert_to_numpy(t) for t in vae._loss_terms[:2])
    z_mean, z_log_var, _ = encoder.predict([x, labels], verbose=0)
    assert recon.shape == kl.shape == (16,)
    np.testing.assert_allclose(recon, _bce(x, reconstruction), rtol=1e-4)
    np.testing.assert_allclose(kl, _kl(z_mean, z_log_var), rtol=1e-4, atol=1e-6)


@core
def test_unknown_and_logits_losses_are_refused():
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        build_conditional_vae(loss="l1")
    with pytest.raises(ValueError, match="ends in a sigmoid"):
        build_conditional_vae(loss="bce_logits")


@core
def test_config_round_trip_keeps_the_options_and_the_class():
    _, _, vae = build_conditional_vae(latent_dim=3, loss="mse", beta=0.5)
    clone = ConditionalVAE.from_config(vae.get_config())
    assert isinstance(clone, ConditionalVAE)
    assert (clone.reconstruction, clone.kl, clone.beta, clone.name) == (
        "mse",
        "analytic",
        0.5,
        "conditional_vae",
    )
    assert clone.encoder.input_shape == [(None, 784), (None, 10)]
    assert clone.decoder.input_shape == [(None, 3), (None, 10)]


def _same_functions(a, b, x, labels):
    """Asserts that two (encoder, decoder) pairs compute exactly the same on `x` and `labels`."""
    (encoder_a, decoder_a), (encoder_b, decoder_b) = a, b
    np.testing.assert_array_equal(
        encoder_a.predict([x, labels], verbose=0)[0], encoder_b.predict([x, labels], verbose=0)[0]
    )
    z = np.random.default_rng(3).standard_normal((len(x), 2)).astype("float32")
    np.testing.assert_array_equal(
        decoder_a.predict([z, labels], verbose=0), decoder_b.predict([z, labels], verbose=0)
    )


@core
def test_whole_model_round_trips_through_a_keras_file_in_safe_mode(digits, tmp_path):
    (x, y), _ = digits
    encoder, decoder, vae = build_conditional_vae(loss="mse", seed=3)
    vae.save(tmp_path / "cvae.keras")
    loaded = keras.models.load_model(tmp_path / "cvae.keras")  # safe_mode=True is the default
    assert isinstance(loaded, ConditionalVAE) and loaded.reconstruction == "mse"
    _same_functions((encoder, decoder), (loaded.encoder, loaded.decoder), x[:8], one_hot(y[:8], 10))


@core
@pytest.mark.parametrize("name", ["cvae.weights.h5", "cvae_mlp_mnist.h5"])
def test_weights_round_trip_through_save_and_load_weights(digits, tmp_path, name):
    (x, y), _ = digits
    encoder, decoder, vae = build_conditional_vae(seed=4)
    vae.compile(optimizer="adam")
    vae.fit((x[:64], one_hot(y[:64], 10)), epochs=1, batch_size=32, verbose=0)
    save_weights(vae, tmp_path / name)
    other_encoder, other_decoder, other = build_conditional_vae(seed=5)
    labels = one_hot(y[:8], 10)
    # Freshly built, the other model computes something else: the check below can fail.
    assert not np.allclose(
        encoder.predict([x[:8], labels], verbose=0)[0],
        other_encoder.predict([x[:8], labels], verbose=0)[0],
    )
    load_weights(other, tmp_path / name)
    _same_functions((encoder, decoder), (other_encoder, other_decoder), x[:8], labels)


@core
def test_weights_of_the_unconditional_vae_are_refused_by_name_of_the_layer(tmp_path):
    _, _, plain = build_mlp_vae()
    save_weights(plain, tmp_path / "plain.weights.h5")
    _, _, vae = build_conditional_vae()
    with pytest.raises(WeightsError, match=r"encoder_dense.*\(784, 512\).*\(794, 512\)"):
        load_weights(vae, tmp_path / "plain.weights.h5")


# --------------------------------------------------------------------------
# Training on real digits, and what the label does


@core
def test_fit_on_pairs_lowers_the_test_loss(trained):
    before, after, history = trained["before"], trained["after"], trained["history"]
    assert set(history) >= {
        "loss",
        "reconstruction_loss",
        "kl_loss",
        "val_loss",
        "val_reconstruction_loss",
        "val_kl_loss",
    }
    # Untrained, every pixel is ~0.5: 784 * log 2 = 543 nats.
    assert before["loss"] == pytest.approx(543, rel=0.05)
    assert after["loss"] < 200  # measured 150-157 on the three backends
    assert history["val_loss"][-1] < history["val_loss"][0]
    np.testing.assert_allclose(
        after["loss"], after["reconstruction_loss"] + after["kl_loss"], rtol=1e-3
    )


@core
def test_the_label_changes_the_digit_more_than_z_does(trained):
    label, style = _label_and_style_effects(trained["decoder"])
    untrained_label, _ = trained["untrained"]
    # Untrained, swapping the label moves pixels by ~0.01 on average (the
    # noise of random weights); trained, by ~0.08-0.1, 1.5 to 2.2 times what
    # drawing another z moves them (measured over seeds and backends).
    assert label > 5 * untrained_label
    assert label > 1.3 * style


@core
def test_digits_of_a_class_look_like_that_classs_mean_digit(digits, trained):
    (x_train, y_train), _ = digits
    means = np.stack([x_train[y_train == c].mean(0) for c in range(10)])
    generated = np.stack([generate(trained["decoder"], np.full(20, c), seed=c) for c in range(10)])
    # distances[c, j, k]: the j-th digit of class c against the mean of class k.
    distances = ((generated[:, :, None, :] - means[None, None]) ** 2).mean(-1)
    nearest = distances.argmin(-1)
    # Nearest-mean is a weak classifier (about 80% on real MNIST test digits):
    # most of each class's digits, for at least 8 classes of 10. (Short
    # training leaves some class information in z, so a class or two may
    # still draw other digits from parts of the prior.)
    share = (nearest == np.arange(10)[:, None]).mean(1)
    assert (share > 0.5).sum() >= 8, share


# --------------------------------------------------------------------------
# Helpers and pictures


@core
def test_one_hot_and_its_refusals():
    np.testing.assert_array_equal(one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.arange(10), 10).dtype == np.float32
    for bad in ([3], [-1], [0.5]):
        with pytest.raises(ValueError, match=r"labels must be integers in \[0, 3\)"):
            one_hot(bad, 3)


@core
def test_generate_is_seeded_and_takes_integer_or_one_hot_labels():
    _, decoder, _ = build_conditional_vae(seed=6)
    labels = np.array([0, 3, 3, 9])
    digits = generate(decoder, labels, seed=7)
    assert digits.shape == (4, 784) and 0 <= digits.min() and digits.max() <= 1
    np.testing.assert_array_equal(generate(decoder, one_hot(labels, 10), seed=7), digits)
    assert not np.array_equal(generate(decoder, labels, seed=8), digits)
    with pytest.raises(ValueError, match="3 latent points for 4 labels"):
        generate(decoder, labels, z=np.zeros((3, 2)))


def _drawn_area(path):
    """`(height, width)` in pixels of a PNG's digits: its rows and columns mostly not white.

    The margins and the labels' text leave most of their rows and columns white.
    """
    with Image.open(path) as image:
        inked = np.asarray(image.convert("L")) < 250
    rows, columns = np.flatnonzero(inked.mean(1) > 0.5), np.flatnonzero(inked.mean(0) > 0.5)
    return rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


def _ratio(path):
    height, width = _drawn_area(path)
    return height / width


def test_class_grid_decodes_the_same_z_in_every_row(tmp_path):
    _, decoder, _ = build_conditional_vae(seed=8)
    # A decoder blind to the label: every row equal exactly when the rows
    # share their draws of z.
    dense = decoder.get_layer("decoder_dense")
    kernel, bias = dense.get_weights()
    kernel[2:] = 0.0
    dense.set_weights([kernel, bias])
    grid = plot_class_grid(
        decoder, tmp_path / "grid.png", n=4, seed=1, class_names=[f"c{c}" for c in range(10)]
    )
    assert grid.shape == (10, 4, 784)
    for row in grid[1:]:
        np.testing.assert_array_equal(row, grid[0])
    assert all(not np.allclose(grid[0, j], grid[0, 0]) for j in range(1, 4))
    np.testing.assert_array_equal(
        plot_class_grid(decoder, tmp_path / "again.png", n=4, seed=1), grid
    )


def test_class_grid_png_has_a_row_per_class_and_a_column_per_draw(tmp_path):
    _, decoder, _ = build_conditional_vae(seed=9)
    plot_class_grid(decoder, tmp_path / "tall.png", n=4, seed=1)
    plot_class_grid(decoder, tmp_path / "wide.png", n=20, seed=1)
    # 10 rows of square digits, over 4 and over 20 columns.
    assert _ratio(tmp_path / "tall.png") == pytest.approx(10 / 4, rel=0.03)
    assert _ratio(tmp_path / "wide.png") == pytest.approx(10 / 20, rel=0.03)
    with pytest.raises(ValueError, match="3 class names for 10 classes"):
        plot_class_grid(decoder, tmp_path / "x.png", class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="num_classes=5, but the decoder takes 10"):
        plot_class_grid(decoder, tmp_path / "x.png", num_classes=5)


def test_class_samples_draw_n_digits_of_one_class(tmp_path):
    _, decoder, _ = build_conditional_vae(seed=10)
    digits = plot_class_samples(decoder, 3, 8, tmp_path / "threes.png", seed=2)
    np.testing.assert_array_equal(digits, generate(decoder, np.full(8, 3), seed=2))
    # plot_digits's grids: 8 digits in one row, 16 in 4x4.
    assert _ratio(tmp_path / "threes.png") == pytest.approx(1 / 8, rel=0.03)
    plot_class_samples(decoder, 3, 16, tmp_path / "square.png", seed=2)
    assert _ratio(tmp_path / "square.png") == pytest.approx(1.0, rel=0.03)
