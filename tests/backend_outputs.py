"""Loads weights saved on one Keras backend and records what they compute on this one.

`tests/test_backends.py` runs it in a fresh process for each other backend
(Keras picks its backend once per process, from KERAS_BACKEND):

    KERAS_BACKEND=jax python tests/backend_outputs.py {mlp|cnn} WEIGHTS MODEL INPUTS OUT

WEIGHTS is a file from `save_weights`, loaded into a freshly built model;
MODEL a `.keras` file from `save_model`, loaded with
`keras.models.load_model` in safe mode. INPUTS holds `x` (digits to encode)
and `z` (latent points to decode). OUT receives the backend's name and, for
both loaded models, `z_mean` and `z_log_var` of `x` and the decoding of `z`.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vae import build_cnn_vae, build_mlp_vae, load_weights  # noqa: E402


def outputs(encoder, decoder, x, z):
    """`z_mean`, `z_log_var` of `x` and the decoding of `z` (no sampling involved)."""
    z_mean, z_log_var, _ = encoder(x, training=False)
    decoded = decoder(z, training=False)
    return [keras.ops.convert_to_numpy(t) for t in (z_mean, z_log_var, decoded)]


def main(kind, weights, model_file, inputs, out):
    with np.load(inputs) as data:
        x, z = data["x"], data["z"]
    encoder, decoder, vae = {"mlp": build_mlp_vae, "cnn": build_cnn_vae}[kind]()
    load_weights(vae, weights)
    loaded = keras.models.load_model(model_file)  # safe_mode=True, the default
    from_weights = outputs(encoder, decoder, x, z)
    from_model = outputs(loaded.encoder, loaded.decoder, x, z)
    names = ("z_mean", "z_log_var", "decoded")
    np.savez(
        out,
        backend=keras.backend.backend(),
        **{f"weights_{name}": value for name, value in zip(names, from_weights)},
        **{f"model_{name}": value for name, value in zip(names, from_model)},
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
