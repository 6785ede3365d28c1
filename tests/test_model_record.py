"""The record a weights file keeps of its model: the builder, its arguments, the binarization."""

import h5py
import numpy as np
import pytest

from vae.models import BURDA_MLP, build_cnn_vae, build_conv_vae, build_mlp_vae
from vae.weights import RECORD_ATTRIBUTE, WeightsError, load_model, read_record, save_weights

BUILDS = {
    "mlp": lambda: build_mlp_vae(latent_dim=3, loss="mse"),
    "burda": lambda: build_mlp_vae(**BURDA_MLP),
    "cnn": lambda: build_cnn_vae(input_shape=(32, 32, 3), latent_dim=4),
    "conv": lambda: build_conv_vae(latent_dim=6, k=5),
}


@pytest.mark.core
@pytest.mark.parametrize("kind", sorted(BUILDS))
def test_load_model_rebuilds_the_model_from_the_file_alone(kind, tmp_path):
    _, _, vae = BUILDS[kind]()
    vae.binarization = "dynamic"
    save_weights(vae, tmp_path / "model.h5")
    encoder, decoder, again, record = load_model(tmp_path / "model.h5")
    assert again.binarization == "dynamic" and record["binarize"] == "dynamic"
    assert (again.reconstruction, again.k) == (vae.reconstruction, vae.k)
    assert tuple(encoder.input.shape) == tuple(vae.encoder.input.shape)
    x = np.random.default_rng(0).random((3, *vae.encoder.input.shape[1:]), dtype=np.float32)
    np.testing.assert_array_equal(
        encoder.predict(x, verbose=0)[0], vae.encoder.predict(x, verbose=0)[0]
    )
    z = np.random.default_rng(1).normal(size=(3, decoder.input.shape[-1])).astype(np.float32)
    np.testing.assert_array_equal(decoder.predict(z, verbose=0), vae.decoder.predict(z, verbose=0))


def test_the_record_is_json_of_the_builders_arguments_without_the_seed(tmp_path):
    _, _, vae = build_mlp_vae(**BURDA_MLP, seed=7)
    save_weights(vae, tmp_path / "burda.h5")
    record = read_record(tmp_path / "burda.h5")
    assert record == {
        "builder": "build_mlp_vae",
        "binarize": None,
        "arguments": {
            "original_dim": 784,
            "intermediate_dim": [200, 200],
            "latent_dim": 50,
            "loss": "bce_logits",
            "beta": 1.0,
            "activation": "tanh",
            "k": 1,
        },
    }


def test_a_file_without_a_record_needs_a_fallback(tmp_path):
    _, _, vae = build_mlp_vae()
    vae.save_weights(tmp_path / "plain.weights.h5")  # Keras's own writer: no record
    assert read_record(tmp_path / "plain.weights.h5") is None
    with pytest.raises(WeightsError, match="records no model.*--model and --latent-dim"):
        load_model(tmp_path / "plain.weights.h5")
    fallback = {"builder": "build_mlp_vae", "arguments": {}, "binarize": "static"}
    _, _, again, _ = load_model(tmp_path / "plain.weights.h5", fallback=fallback)
    assert again.binarization == "static"
    np.testing.assert_array_equal(again.get_weights()[0], vae.get_weights()[0])


def test_a_record_of_an_unknown_builder_is_one_clear_error(tmp_path):
    _, _, vae = build_mlp_vae()
    save_weights(vae, tmp_path / "model.h5")
    with h5py.File(tmp_path / "model.h5", "a") as f:
        f.attrs[RECORD_ATTRIBUTE] = '{"builder": "build_gan", "arguments": {}}'
    with pytest.raises(WeightsError, match="cannot build.*unknown builder 'build_gan'"):
        load_model(tmp_path / "model.h5")
