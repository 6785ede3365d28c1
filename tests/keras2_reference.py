"""Writes Keras 2 (tf_keras) reference weights and outputs for the compatibility tests.

Rebuilds the models of the original Keras 2 examples, as they were written
(`variational_autoencoder.py` and `variational_autoencoder_deconv.py`:
`Lambda(sampling)`, `vae.add_loss(...)`, `compile('adam' / 'rmsprop')`),
trains one epoch on about 1000 real MNIST digits, and writes into OUT_DIR:

* `vae_<kind>_mnist.h5`: `vae.save_weights(...)`, the legacy Keras 2 HDF5
  layout the original examples write under TensorFlow 2 (`tf.keras`): since
  `add_loss` was given tensors of the encoder's inner layers, Keras inserts
  those layers (`dense`, `z_mean`, `z_log_var`, and the convolutions) into
  the `vae` model, so they are saved at the top level a second time, beside
  `encoder` and `decoder`;
* `vae_<kind>_mnist_nested.h5`: the same weights in the layout multi-backend
  Keras 2.2 wrote for the same script (its `add_loss` inserted no layers):
  only `encoder_input`, `encoder` and `decoder` at the top level;
* `reference.npz`: `x` (the 64 test digits encoded), `z_mean`, `z_log_var`
  (the encoder's outputs on them), `z` (fixed latent points: a 5x5 grid over
  the first two dimensions, then seeded standard normals) and `decoded`
  (the decoder's outputs on `z`).

It runs in its own process (the tests start it with `subprocess`): tf_keras
and Keras 3 should not share one. It reads the IDX files itself, with gzip
and numpy, so that it does not depend on the package under test.

Usage: python tests/keras2_reference.py {mlp|cnn} OUT_DIR --data MNIST_DIR [--latent-dim N]
"""

import argparse
import gzip
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

N_TRAIN = 1024
N_REFERENCE = 64
N_RANDOM_Z = 16
SEED = 1234


def read_images(path):
    """An IDX3 image file, gzipped or not, as float32 in [0, 1], shape (n, 28, 28)."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic != 0x00000803:
        raise SystemExit(f"{path}: not an IDX image file (magic {magic:#010x})")
    n, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(data, dtype=np.uint8, offset=16, count=n * rows * cols)
    return images.reshape(n, rows, cols).astype("float32") / 255.0


def find_idx(folder, name):
    for candidate in (folder / (name + ".gz"), folder / name):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{folder}: {name}[.gz] not found")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["mlp", "cnn"])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="folder of the MNIST IDX files")
    parser.add_argument("--latent-dim", type=int, default=2)
    args = parser.parse_args(argv)

    import tensorflow as tf
    import tf_keras as keras
    from tf_keras import backend as K
    from tf_keras.layers import Conv2D, Conv2DTranspose, Dense, Flatten, Input, Lambda, Reshape
    from tf_keras.losses import binary_crossentropy
    from tf_keras.models import Model

    keras.utils.set_random_seed(SEED)

    x_train = read_images(find_idx(args.data, "train-images-idx3-ubyte"))[:N_TRAIN]
    x_test = read_images(find_idx(args.data, "t10k-images-idx3-ubyte"))[:N_REFERENCE]
    image_size = x_train.shape[1]
    latent_dim = args.latent_dim

    # reparameterization trick, as in the original examples
    def sampling(args):
        z_mean, z_log_var = args
        batch = K.shape(z_mean)[0]
        dim = K.int_shape(z_mean)[1]
        epsilon = K.random_normal(shape=(batch, dim))
        return z_mean + K.exp(0.5 * z_log_var) * epsilon

    if args.kind == "mlp":
        # variational_autoencoder.py
        original_dim = image_size * image_size
        x_train = np.reshape(x_train, [-1, original_dim])
        x_test = np.reshape(x_test, [-1, original_dim])
        input_shape = (original_dim,)
        intermediate_dim = 512
        batch_size = 128

        inputs = Input(shape=input_shape, name="encoder_input")
        x = Dense(intermediate_dim, activation="relu")(inputs)
        z_mean = Dense(latent_dim, name="z_mean")(x)
        z_log_var = Dense(latent_dim, name="z_log_var")(x)
        z = Lambda(sampling, output_shape=(latent_dim,), name="z")([z_mean, z_log_var])
        encoder = Model(inputs, [z_mean, z_log_var, z], name="encoder")

        latent_inputs = Input(shape=(latent_dim,), name="z_sampling")
        x = Dense(intermediate_dim, activation="relu")(latent_inputs)
        outputs = Dense(original_dim, activation="sigmoid")(x)
        decoder = Model(latent_inputs, outputs, name="decoder")

        outputs = decoder(encoder(inputs)[2])
        vae = Model(inputs, outputs, name="vae_mlp")

        reconstruction_loss = binary_crossentropy(inputs, outputs)
        reconstruction_loss *= original_dim
        kl_loss = 1 + z_log_var - K.square(z_mean) - K.exp(z_log_var)
        kl_loss = K.sum(kl_loss, axis=-1)
        kl_loss *= -0.5
        vae_loss = K.mean(reconstruction_loss + kl_loss)
        vae.add_loss(vae_loss)
        vae.compile(optimizer="adam")
    else:
        # variational_autoencoder_deconv.py
        x_train = np.reshape(x_train, [-1, image_size, image_size, 1])
        x_test = np.reshape(x_test, [-1, image_size, image_size, 1])
        input_shape = (image_size, image_size, 1)
        batch_size = 128
        kernel_size = 3
        filters = 16

        inputs = Input(shape=input_shape, name="encoder_input")
        x = inputs
        for _ in range(2):
            filters *= 2
            x = Conv2D(
                filters=filters,
                kernel_size=kernel_size,
                activation="relu",
                strides=2,
                padding="same",
            )(x)
        shape = K.int_shape(x)
        x = Flatten()(x)
        x = Dense(16, activation="relu")(x)
        z_mean = Dense(latent_dim, name="z_mean")(x)
        z_log_var = Dense(latent_dim, name="z_log_var")(x)
        z = Lambda(sampling, output_shape=(latent_dim,), name="z")([z_mean, z_log_var])
        encoder = Model(inputs, [z_mean, z_log_var, z], name="encoder")

        latent_inputs = Input(shape=(latent_dim,), name="z_sampling")
        x = Dense(shape[1] * shape[2] * shape[3], activation="relu")(latent_inputs)
        x = Reshape((shape[1], shape[2], shape[3]))(x)
        for _ in range(2):
            x = Conv2DTranspose(
                filters=filters,
                kernel_size=kernel_size,
                activation="relu",
                strides=2,
                padding="same",
            )(x)
            filters //= 2
        outputs = Conv2DTranspose(
            filters=1,
            kernel_size=kernel_size,
            activation="sigmoid",
            padding="same",
            name="decoder_output",
        )(x)
        decoder = Model(latent_inputs, outputs, name="decoder")

        outputs = decoder(encoder(inputs)[2])
        vae = Model(inputs, outputs, name="vae")

        reconstruction_loss = binary_crossentropy(K.flatten(inputs), K.flatten(outputs))
        reconstruction_loss *= image_size * image_size
        kl_loss = 1 + z_log_var - K.square(z_mean) - K.exp(z_log_var)
        kl_loss = K.sum(kl_loss, axis=-1)
        kl_loss *= -0.5
        vae_loss = K.mean(reconstruction_loss + kl_loss)
        vae.add_loss(vae_loss)
        vae.compile(optimizer="rmsprop")

    history = vae.fit(x_train, epochs=1, batch_size=batch_size, verbose=0)
    loss = history.history["loss"][-1]
    if not np.isfinite(loss):
        raise SystemExit(f"training diverged: loss {loss}")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = args.out_dir / f"vae_{args.kind}_mnist.h5"
    vae.save_weights(str(weights_path))

    nested_path = args.out_dir / f"vae_{args.kind}_mnist_nested.h5"
    Model(inputs, decoder(encoder(inputs)[2]), name=vae.name).save_weights(str(nested_path))

    import h5py

    layer_names = {}
    for path in (weights_path, nested_path):
        with h5py.File(path, "r") as f:
            if "layer_names" not in f.attrs:
                raise SystemExit(f"{path}: not in the legacy Keras 2 HDF5 layout")
            layer_names[path.name] = [
                n.decode() if isinstance(n, bytes) else str(n)
                for n in f.attrs["layer_names"]
                if len(f[n].attrs["weight_names"])
            ]
    if layer_names[nested_path.name] != ["encoder", "decoder"]:
        raise SystemExit(f"{nested_path}: unexpected layers {layer_names[nested_path.name]}")

    z_mean_out, z_log_var_out, _ = encoder.predict(x_test, verbose=0)

    grid = np.linspace(-3.0, 3.0, 5, dtype="float32")
    z_grid = np.zeros((25, latent_dim), dtype="float32")
    z_grid[:, 0] = np.repeat(grid, 5)
    if latent_dim > 1:
        z_grid[:, 1] = np.tile(grid, 5)
    rng = np.random.default_rng(SEED)
    z_random = rng.standard_normal((N_RANDOM_Z, latent_dim)).astype("float32")
    z_fixed = np.concatenate([z_grid, z_random])
    decoded = decoder.predict(z_fixed, verbose=0)

    np.savez(
        args.out_dir / "reference.npz",
        x=x_test,
        z_mean=z_mean_out,
        z_log_var=z_log_var_out,
        z=z_fixed,
        decoded=decoded,
        loss=np.float32(loss),
    )
    print(
        f"{args.kind}: tf_keras {keras.__version__}, tensorflow {tf.__version__}, "
        f"loss {loss:.3f}, layers with weights {layer_names}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
