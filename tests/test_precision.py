"""Mixed precision: layers in bfloat16 on this CPU, weights, loss and sampling in float32."""

import keras
import numpy as np
import pytest

from vae import cli
from vae.models import build_mlp_vae
from vae.precision import POLICIES, _has_gpu, default_policy, mixed_precision
from vae.weights import load_weights, save_weights


@pytest.fixture
def bfloat16():
    mixed_precision("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def _dtype(tensor):
    return keras.backend.standardize_dtype(tensor.dtype)


def _train(x_train, x_test):
    keras.utils.set_random_seed(1)
    encoder, decoder, vae = build_mlp_vae(seed=1)
    vae.compile(optimizer="adam")
    history = vae.fit(x_train, epochs=3, batch_size=100, validation_data=(x_test, None), verbose=0)
    return (encoder, decoder, vae), history.history


def test_bfloat16_layers_train_with_float32_weights_loss_and_sampling(mnist_flat, bfloat16):
    (x_train, _), (x_test, _) = mnist_flat
    x_train, x_test = x_train[:2000], x_test[:500]
    (encoder, decoder, vae), history = _train(x_train, x_test)

    for name in ("encoder_dense", "z_mean", "z_log_var"):
        assert encoder.get_layer(name).compute_dtype == "bfloat16", name
    assert decoder.get_layer("decoder_dense").compute_dtype == "bfloat16"
    assert {_dtype(weight) for weight in vae.weights} == {"float32"}
    z_mean, z_log_var, z = encoder(x_test[:8])
    assert (_dtype(z_mean), _dtype(z_log_var)) == ("bfloat16", "bfloat16")
    assert _dtype(z) == "float32"  # sampled in float32
    assert _dtype(decoder(z)) == "float32"  # the output layer computes in float32
    vae(x_test[:8])
    assert [_dtype(term) for term in vae._loss_terms[:2]] == ["float32", "float32"]

    losses = history["loss"]
    assert np.all(np.isfinite(losses + history["val_loss"]))
    assert losses[0] > losses[1] > losses[2]

    # The same run in float32: bfloat16 keeps ~3 significant digits per
    # operation; the losses agreed to 0.1% here, 1% allows for other CPUs.
    keras.mixed_precision.set_global_policy("float32")
    _, float32_history = _train(x_train, x_test)
    np.testing.assert_allclose(history["val_loss"][-1], float32_history["val_loss"][-1], rtol=0.01)


def test_weights_saved_under_mixed_precision_load_into_a_float32_model(
    mnist_flat, bfloat16, tmp_path
):
    (x_train, _), (x_test, _) = mnist_flat
    encoder, _, vae = build_mlp_vae(seed=1)
    vae.compile(optimizer="adam")
    vae.fit(x_train[:1000], epochs=1, batch_size=100, verbose=0)
    path = tmp_path / "vae_mlp_mnist.h5"
    save_weights(vae, path)
    trained = vae.get_weights()
    z_mean_bfloat16 = keras.ops.convert_to_numpy(encoder(x_test[:100])[0]).astype("float32")

    keras.mixed_precision.set_global_policy("float32")
    encoder32, _, vae32 = build_mlp_vae()
    load_weights(vae32, path)
    for loaded, saved in zip(vae32.get_weights(), trained, strict=True):
        assert loaded.dtype == np.float32
        np.testing.assert_array_equal(loaded, saved)
    # The same function, computed in float32 now: equal to bfloat16's precision
    # (8 significant bits, 0.4% a rounding; the means differed by up to 1.2% here).
    z_mean = keras.ops.convert_to_numpy(encoder32(x_test[:100])[0])
    np.testing.assert_allclose(z_mean, z_mean_bfloat16, rtol=0.03, atol=0.01)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's logits path")
def test_cross_entropy_stays_exact_when_the_decoder_saturates(bfloat16, saturated_decoder_loss):
    # In bfloat16 the sigmoid of 30 would be exactly 1 and the loss clipped to
    # 16.1 nats a pixel, with no gradient; in float32 it is exactly 30.
    np.testing.assert_allclose(saturated_decoder_loss(), 30.0 * 784, rtol=1e-4)


def test_flag_without_a_policy_picks_the_hardwares(tmp_path, capsys):
    try:
        cli.parse_args("vae_mlp", "", 1, "adam", ["--mixed-precision", "--out", str(tmp_path)])
        policy = keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert policy == default_policy() == ("mixed_float16" if _has_gpu() else "mixed_bfloat16")
    assert f"mixed precision ({policy})" in capsys.readouterr().out
    assert cli.MIXED_PRECISION_POLICIES == POLICIES
