import keras
import numpy as np
import pytest

from vae.models import VAE, build_cnn_vae, build_conv_vae, build_mlp_vae

# Run on every Keras backend (pytest -m core).
pytestmark = pytest.mark.core

BUILDERS = {
    "mlp": (build_mlp_vae, (784,)),
    "cnn": (build_cnn_vae, (28, 28, 1)),
}


def _numpy_loss(x, reconstruction, z_mean, z_log_var, loss):
    x, reconstruction = x.reshape(len(x), -1), reconstruction.reshape(len(x), -1)
    if loss == "bce":
        p = np.clip(reconstruction, 1e-7, 1 - 1e-7)
        recon = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1)
    else:
        recon = ((x - reconstruction) ** 2).sum(1)
    kl = -0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var)).sum(1)
    return recon.mean(), kl.mean()


def test_mlp_layers_and_shapes_are_the_examples():
    encoder, decoder, vae = build_mlp_vae(latent_dim=3)
    assert [layer.name for layer in encoder.layers] == [
        "encoder_input",
        "encoder_dense",
        "z_mean",
        "z_log_var",
        "z",
    ]
    assert encoder.get_layer("encoder_dense").units == 512
    assert [tuple(o.shape) for o in encoder.outputs] == [(None, 3)] * 3
    assert decoder.layers[0].name == "z_sampling"
    assert decoder.output.shape == (None, 784)
    assert decoder.get_layer("decoder_output").activation is keras.activations.sigmoid
    assert vae.name == "vae_mlp"
    assert vae.predict(np.zeros((2, 784), "float32"), verbose=0).shape == (2, 784)


def test_cnn_layers_and_shapes_are_the_examples():
    encoder, decoder, vae = build_cnn_vae()
    convs = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.strides, c.padding) for c in convs] == [
        (32, (2, 2), "same"),
        (64, (2, 2), "same"),
    ]
    assert encoder.get_layer("encoder_dense").units == 16
    deconvs = [l for l in decoder.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [(d.filters, d.strides) for d in deconvs] == [(64, (2, 2)), (32, (2, 2)), (1, (1, 1))]
    assert deconvs[-1].name == "decoder_output"
    assert decoder.output.shape == (None, 28, 28, 1)
    assert vae.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape == (2, 28, 28, 1)


@pytest.mark.parametrize("kind", BUILDERS)
def test_encoder_decoder_and_vae_share_their_variables(kind):
    build, shape = BUILDERS[kind]
    encoder, decoder, vae = build()
    shared = {id(v) for v in encoder.weights + decoder.weights}
    # The VAE's only state of its own is the KL weight, which is not learnt.
    assert shared | {id(vae.kl_weight)} == {id(v) for v in vae.weights}
    assert {id(v) for v in vae.trainable_weights} <= shared
    x = np.random.default_rng(0).uniform(size=(32, *shape)).astype("float32")
    before = encoder.predict(x, verbose=0)[0], decoder.predict(np.zeros((1, 2)), verbose=0)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    after = encoder.predict(x, verbose=0)[0], decoder.predict(np.zeros((1, 2)), verbose=0)
    assert not np.allclose(before[0], after[0])
    assert not np.allclose(before[1], after[1])


@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("kind", BUILDERS)
def test_model_loss_is_reconstruction_plus_kl(kind, loss):
    build, shape = BUILDERS[kind]
    encoder, decoder, vae = build(loss=loss)
    x = np.random.default_rng(1).uniform(size=(16, *shape)).astype("float32")
    reconstruction = keras.ops.convert_to_numpy(vae(x))
    total = keras.ops.convert_to_numpy(vae.compute_loss(x=x, y_pred=reconstruction))
    z_mean, z_log_var, _ = encoder.predict(x, verbose=0)
    expected_recon, expected_kl = _numpy_loss(x, reconstruction, z_mean, z_log_var, loss)
    np.testing.assert_allclose(total, expected_recon + expected_kl, rtol=1e-4)
    np.testing.assert_allclose(vae.reconstruction_loss_tracker.result(), expected_recon, rtol=1e-4)
    np.testing.assert_allclose(vae.kl_loss_tracker.result(), expected_kl, rtol=1e-4)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="unknown loss 'l1': use one of bce, mse"):
        build_mlp_vae(loss="l1")


def test_training_on_real_digits_lowers_the_test_loss(mnist_flat):
    (x_train, _), (x_test, _) = mnist_flat
    encoder, decoder, vae = build_mlp_vae(seed=0)
    vae.compile(optimizer="adam")
    before = vae.evaluate(x_test[:1000], verbose=0, return_dict=True)
    history = vae.fit(
        x_train[:5000], epochs=3, batch_size=128, validation_data=(x_test[:1000], None), verbose=0
    )
    after = vae.evaluate(x_test[:1000], verbose=0, return_dict=True)
    assert set(history.history) >= {
        "loss",
        "reconstruction_loss",
        "kl_loss",
        "val_loss",
        "val_reconstruction_loss",
        "val_kl_loss",
    }
    # An untrained decoder says ~0.5 for every pixel: 784 * log 2 = 543 nats.
    assert before["loss"] == pytest.approx(543, rel=0.05)
    assert after["loss"] < 215
    np.testing.assert_allclose(
        after["loss"], after["reconstruction_loss"] + after["kl_loss"], rtol=1e-3
    )


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's logits path")
def test_training_loss_stays_exact_when_the_decoder_saturates(saturated_decoder_loss):
    # Every pixel is 0 and its logit 30: exactly 30 nats each, not the clipped 16.1.
    np.testing.assert_allclose(saturated_decoder_loss(), 30.0 * 784, rtol=1e-4)


@pytest.mark.parametrize("kind", BUILDERS)
def test_whole_model_round_trips_through_a_keras_file_in_safe_mode(kind, tmp_path):
    build, shape = BUILDERS[kind]
    encoder, decoder, vae = build(loss="mse", seed=3)
    path = tmp_path / "vae.keras"
    vae.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True is the default
    assert isinstance(loaded, VAE) and loaded.reconstruction == "mse"
    x = np.random.default_rng(2).uniform(size=(4, *shape)).astype("float32")
    np.testing.assert_array_equal(
        loaded.encoder.predict(x, verbose=0)[0], encoder.predict(x, verbose=0)[0]
    )
    z = np.random.default_rng(3).normal(size=(4, 2)).astype("float32")
    np.testing.assert_array_equal(
        loaded.decoder.predict(z, verbose=0), decoder.predict(z, verbose=0)
    )


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="a TensorFlow compile default")
def test_mlps_compile_with_xla_and_convolutional_models_as_keras_chooses():
    vae = build_mlp_vae()[2]
    vae.compile(optimizer="adam")
    assert vae.jit_compile is True
    vae.compile(optimizer="adam", jit_compile=False)  # asked for: kept
    assert vae.jit_compile is False
    for build in (build_cnn_vae, build_conv_vae):
        vae = build()[2]
        vae.compile(optimizer="adam")
        other = build()[2]
        keras.Model.compile(other, optimizer="adam")  # Keras's own "auto", unchanged
        assert vae.jit_compile == other.jit_compile


@pytest.mark.core
def test_beta_weights_the_kl_term_of_the_loss(mnist_flat):
    _, (x_test, _) = mnist_flat
    results = {}
    for beta in (1.0, 3.0, 0.0):
        keras.utils.set_random_seed(0)
        _, _, vae = build_mlp_vae(intermediate_dim=64, seed=0, beta=beta)
        vae.compile(optimizer="adam")
        results[beta] = vae.evaluate(x_test[:256], verbose=0, return_dict=True)
    for beta, metrics in results.items():
        assert metrics["loss"] == pytest.approx(
            metrics["reconstruction_loss"] + beta * metrics["kl_loss"], rel=1e-5
        )
        assert metrics["negative_elbo"] == pytest.approx(
            metrics["reconstruction_loss"] + metrics["kl_loss"], rel=1e-5
        )
    # The same network (same seeds): only the weighting differs.
    assert results[3.0]["negative_elbo"] == pytest.approx(results[1.0]["loss"], rel=1e-5)


def test_beta_is_in_the_config_and_must_not_be_negative():
    _, _, vae = build_mlp_vae(beta=2.5)
    assert vae.get_config()["beta"] == 2.5
    assert VAE.from_config(vae.get_config()).beta == 2.5
    with pytest.raises(ValueError, match="beta must be a number >= 0"):
        build_mlp_vae(beta=-1.0)
