"""The VAE model, with its loss attached, and the builders of the classic examples."""

import functools
import inspect
import math

import keras
from keras import layers, ops

from vae.convolution import Conv2D, Conv2DTranspose
from vae.distribute import replica
from vae.evaluation import log_importance_weights
from vae.layers import Sampling
from vae.losses import (
    RECONSTRUCTION_LOSSES,
    DiscretizedLogistic,
    kl_divergence,
    monte_carlo_kl,
    reconstruction_loss,
)

# How the KL term is computed: in closed form, or by the single-sample
# estimator `log q(z|x) - log p(z)` of the TensorFlow tutorial.
KL_ESTIMATORS = ("analytic", "monte_carlo")

# The one-stochastic-layer MNIST model of Burda et al. 2015 ("Importance Weighted
# Autoencoders"), as arguments of build_mlp_vae.
BURDA_MLP = dict(intermediate_dim=(200, 200), activation="tanh", latent_dim=50, loss="bce_logits")

# Batches per call of the compiled training function (see `VAE.compile`).
STEPS_PER_EXECUTION = 8

# The decoders' last layer computes in float32 even under a mixed-precision
# policy: in 16 bits a pixel probability near 1 rounds to exactly 1, where the
# cross-entropy is clipped and stops teaching (float32 sigmoids also let
# TensorFlow compute it from the logits), and logits lose their digits.
OUTPUT_DTYPE = "float32"


@keras.saving.register_keras_serializable(package="vae")
class VAE(keras.Model):
    """A variational autoencoder: `decoder(encoder(x)[2])` with its loss built in.

    The loss is the negative ELBO of each example, averaged over the batch:
    the reconstruction term `-log p(x|z)` plus `KL(q(z|x) || N(0, I))`, the
    KL term weighted by `beta` (Higgins et al.'s beta-VAE; 1 is the ELBO).
    Because it is part of the model, `compile` needs no loss and `fit` needs
    no targets, as in the original Keras examples. Both terms are reported
    as metrics (`reconstruction_loss`, `kl_loss`) beside `loss`, and so is
    their unweighted sum `negative_elbo`, which compares across beta and
    KL warm-up where `loss` does not.

    Args:
        encoder: a model mapping `x` to `[z_mean, z_log_var, z]`.
        decoder: a model mapping `z` to the reconstruction: probabilities for
            `"bce"` and `"mse"`, logits for `"bce_logits"`.
        loss: `"bce"` (binary cross-entropy), `"mse"` (squared error) or
            `"bce_logits"` (binary cross-entropy of logits), each summed over
            the pixels; or a `vae.losses.DiscretizedLogistic`, the likelihood
            of 8-bit pixels with a learned scale (its weight is the VAE's).
        kl: `"analytic"`, the closed form of the KL divergence, or
            `"monte_carlo"`, its single-sample estimate `log q(z|x) - log p(z)`
            at the decoded `z` (the TensorFlow tutorial's estimator; same
            mean, more noise).
        beta: weight of the KL term in the loss. The weight in use is the
            non-trainable variable `kl_weight`, which starts at `beta`;
            `vae.callbacks.KLWarmup` raises it from 0 to `beta` over the first
            epochs.
        k: draws of z per example. 1 is the ELBO above; with more, the loss
            is the importance-weighted bound of Burda et al. 2015 (the IWAE),
            `-log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)`, tighter as `k`
            grows; the metrics stay the mean reconstruction and KL terms over
            the draws, and `negative_elbo` their sum.

    Example:

    >>> encoder, decoder, vae = build_mlp_vae()
    >>> vae.compile(optimizer="adam")
    >>> vae.fit(x_train, epochs=50, batch_size=128, validation_data=(x_test, None))
    """

    def __init__(self, encoder, decoder, loss="bce", kl="analytic", beta=1.0, k=1, **kwargs):
        super().__init__(**kwargs)
        _check_loss(loss)
        if kl not in KL_ESTIMATORS:
            raise ValueError(f"unknown kl {kl!r}: use one of {', '.join(KL_ESTIMATORS)}")
        if not 0 <= beta < math.inf:
            raise ValueError(f"beta must be a number >= 0, not {beta!r}")
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a whole number of draws >= 1, not {k!r}")
        if k > 1 and beta != 1:
            raise ValueError(
                "beta weights the ELBO's KL term, which the importance-weighted "
                "bound (k > 1) does not have: use beta=1 with k > 1"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction = loss
        self.kl = kl
        self.beta = float(beta)
        self.k = int(k)
        if self.k > 1:  # the extra draws of z (the encoder's Sampling draws one)
            self.seed_generator = keras.random.SeedGenerator()
        # A variable, not a constant: a callback changes it between epochs and
        # the compiled step (on JAX a pure function of the model's state) sees it.
        self.kl_weight = keras.Variable(
            self.beta, trainable=False, dtype="float32", name="kl_weight"
        )
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.negative_elbo_tracker = keras.metrics.Mean(name="negative_elbo")

    def build(self, input_shape):
        # The encoder and decoder arrive built; there is nothing of our own.
        self.built = True

    # The KL weight is training state, not a learned weight: weights files
    # leave it out, so they keep the layout of the original examples' files
    # and of earlier versions of this package (a backup keeps it, see
    # vae.safeguards.TrainingBackup).
    def save_own_variables(self, store):
        pass

    def load_own_variables(self, store):
        pass

    def compile(self, *args, jit_compile="auto", steps_per_execution=None, **kwargs):
        """Keras's `compile`, with two defaults chosen by measurement.

        `jit_compile="auto"`: on TensorFlow, XLA also for CPU MLPs. Keras's
        "auto" leaves XLA off on TensorFlow CPUs. For models without
        convolutions, XLA trains about 1.35 times as fast there; XLA's CPU
        convolutions are slower than TensorFlow's own, so convolutional
        models keep Keras's choice, as does data-parallel training.

        `steps_per_execution=None`: 8 steps per call of the compiled
        function, so Keras's per-step work (its loop, the callbacks, the
        progress bar) runs once per 8 batches. In an alternating run the
        MLP's epoch took 2.27 against 2.38 s on TensorFlow and 1.20 against
        1.27 s on JAX; the CNN's steps did not change. Batch-level callbacks then see every
        eighth batch; pass `steps_per_execution=1` to see each. It stays 1
        where Keras refuses or fails with more: on PyTorch, and under a
        tf.distribute strategy ("You must feed a value for placeholder tensor").

        An explicit value of either is passed on as given
        (benchmarks/README.md has the measurements).
        """
        eager = kwargs.get("run_eagerly")
        if jit_compile == "auto" and not eager and _xla_pays_on_tensorflow(self):
            jit_compile = True
        if steps_per_execution is None:
            single = eager or _tensorflow_strategy() or keras.config.backend() == "torch"
            steps_per_execution = 1 if single else STEPS_PER_EXECUTION
        super().compile(
            *args, jit_compile=jit_compile, steps_per_execution=steps_per_execution, **kwargs
        )

    def call(self, inputs, training=None):
        z_mean, z_log_var, z = self.encoder(inputs, training=training)
        if self.k > 1:
            return self._importance_weighted(inputs, z_mean, z_log_var, training)
        reconstruction = self.decoder(z, training=training)
        self._set_loss_terms(inputs, reconstruction, z_mean, z_log_var, z)
        return reconstruction

    def _importance_weighted(self, x, z_mean, z_log_var, training):
        """The IWAE's terms from `k` draws per example; returns the first draw's reconstruction."""
        epsilon = keras.random.normal(
            (ops.shape(z_mean)[0], self.k, ops.shape(z_mean)[-1]),
            dtype="float32",
            seed=self.seed_generator,
        )
        log_weights, log_px_z, decoded = log_importance_weights(
            self.decoder, self.reconstruction, x, z_mean, z_log_var, epsilon, training
        )
        bound = ops.logsumexp(log_weights, axis=1) - math.log(self.k)
        kl = kl_divergence(ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32"))
        self._loss_terms = (-ops.mean(log_px_z, axis=1), kl, -bound)
        return ops.reshape(decoded, (-1, self.k, *decoded.shape[1:]))[:, 0]

    def _set_loss_terms(self, x, reconstruction, z_mean, z_log_var, z):
        # Keras calls compute_loss right after call, inside the same traced
        # step on every backend; keeping the terms here means the encoder
        # runs once per step and the loss sees the z that was decoded.
        z_mean, z_log_var = ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
        if self.kl == "analytic":
            kl = kl_divergence(z_mean, z_log_var)
        else:
            kl = monte_carlo_kl(ops.cast(z, "float32"), z_mean, z_log_var)
        reconstruction = reconstruction_loss(
            ops.cast(x, "float32"), ops.cast(reconstruction, "float32"), self.reconstruction
        )
        # The objective is the ELBO, its KL term weighted (see compute_loss).
        self._loss_terms = (reconstruction, kl, None)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        reconstruction, kl, negative_bound = self._loss_terms
        self.reconstruction_loss_tracker.update_state(reconstruction)
        self.kl_loss_tracker.update_state(kl)
        self.negative_elbo_tracker.update_state(reconstruction + kl)
        # Under a tf.distribute strategy this runs on each replica's share of
        # the batch: Keras adds up their gradients, and reports this loss
        # times their number (as for its own losses, which it divides so).
        _, replicas = replica()
        if negative_bound is None:
            negative_bound = reconstruction + self.kl_weight * kl
        return ops.mean(negative_bound) / replicas

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "loss": (
                self.reconstruction
                if isinstance(self.reconstruction, str)
                else keras.saving.serialize_keras_object(self.reconstruction)
            ),
            "kl": self.kl,
            "beta": self.beta,
            "k": self.k,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for part in ("encoder", "decoder"):
            config[part] = keras.saving.deserialize_keras_object(config[part])
        if not isinstance(config["loss"], str):
            config["loss"] = keras.saving.deserialize_keras_object(config["loss"])
        return cls(**config)


# Arguments that change how a model is made, not what it computes: a model
# rebuilt from its record leaves them at their defaults.
_NOT_ARCHITECTURE = ("seed",)


def records_architecture(builder):
    """Makes a builder note on its `vae` how it was called: `vae.architecture`.

    `{"builder": "build_mlp_vae", "arguments": {...}}`, every argument but the
    seed, in JSON's types; `vae.weights.save_weights` stores it in the weights
    file, so that `vae.weights.load_model` rebuilds the model from the file
    alone (`examples/score.py` needs no `--model` then).
    """

    @functools.wraps(builder)
    def build(*args, **kwargs):
        bound = inspect.signature(builder).bind(*args, **kwargs)
        bound.apply_defaults()
        models = builder(*args, **kwargs)
        arguments = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in bound.arguments.items()
            if name not in _NOT_ARCHITECTURE
        }
        models[-1].architecture = {"builder": builder.__name__, "arguments": arguments}
        return models

    return build


def build_from_architecture(architecture):
    """Builds `(encoder, decoder, vae)` anew from a `vae.architecture` record.

    Raises:
        ValueError: the record names no builder of this module, or arguments it does not take.
    """
    builder = BUILDERS.get(architecture.get("builder"))
    if builder is None:
        raise ValueError(
            f"unknown builder {architecture.get('builder')!r}: use one of {', '.join(BUILDERS)}"
        )
    arguments = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in architecture.get("arguments", {}).items()
    }
    return builder(**arguments)


def _tensorflow_strategy():
    """Whether a tf.distribute strategy is in scope (data-parallel training on TensorFlow)."""
    if keras.config.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.distribute.has_strategy()


def _xla_pays_on_tensorflow(vae):
    if keras.config.backend() != "tensorflow":
        return False
    convolutions = (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.Conv2DTranspose)
    convolutional = any(
        isinstance(layer, convolutions)
        for part in (vae.encoder, vae.decoder)
        for layer in part._flatten_layers()
    )
    return not convolutional and not _tensorflow_strategy()


def _gaussian_encoder(inputs, features, latent_dim, seed):
    """Ends an encoder with the `z_mean`, `z_log_var` heads and the sampled `z`."""
    z_mean = layers.Dense(latent_dim, name="z_mean")(features)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(features)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def _check_loss(loss):
    if not isinstance(loss, DiscretizedLogistic) and loss not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"unknown loss {loss!r}: use one of {', '.join(RECONSTRUCTION_LOSSES)}")


def _refuse_logits_loss(loss):
    # These decoders end in a sigmoid: reading its probabilities as logits
    # would train on a wrong likelihood without a word.
    if loss == "bce_logits":
        raise ValueError(
            "loss 'bce_logits' needs a decoder that outputs logits, and this one ends in a "
            "sigmoid: use 'bce' (the same Bernoulli likelihood), or build_conv_vae"
        )


def _assemble(encoder, decoder, loss, name, input_shape, kl="analytic", beta=1.0, k=1):
    vae = VAE(encoder, decoder, loss=loss, kl=kl, beta=beta, k=k, name=name)
    vae.build((None, *input_shape))
    return encoder, decoder, vae


@records_architecture
def build_mlp_vae(
    original_dim=784,
    intermediate_dim=512,
    latent_dim=2,
    loss="bce",
    seed=None,
    beta=1.0,
    activation="relu",
    k=1,
):
    """The MLP VAE of the Keras example `variational_autoencoder.py`, and deeper ones.

    Encoder `784 -> 512 (relu) -> (z_mean, z_log_var) -> z`; decoder
    `z -> 512 (relu) -> 784 (sigmoid)`. The three models share their layers:
    training `vae` changes what `encoder` and `decoder` compute.

    Several hidden layers, e.g. `intermediate_dim=(200, 200)`, make the
    encoder `784 -> 200 -> 200` and the decoder mirror it; with
    `activation="tanh"`, `latent_dim=50` and `loss="bce_logits"` that is the
    one-stochastic-layer model of Burda et al. 2015.

    Args:
        original_dim: length of a flattened input (28 * 28 for MNIST).
        intermediate_dim: width of the hidden layer of encoder and decoder,
            or a sequence of widths, one per hidden layer of the encoder (the
            decoder takes them in reverse).
        latent_dim: dimension of z.
        loss: reconstruction term: `"bce"` or `"mse"` with a sigmoid output,
            or `"bce_logits"`, whose decoder outputs logits.
        seed: seed of the sampling layer's random stream, or `None`.
        beta: weight of the KL term in the loss (see `VAE`).
        activation: the hidden layers' activation.
        k: draws of z per example; above 1 the loss is the IWAE bound (see `VAE`).

    Returns:
        `(encoder, decoder, vae)`: the encoder outputs `[z_mean, z_log_var, z]`,
        the decoder maps z to pixel probabilities (logits with
        `"bce_logits"`), and `vae` is a `VAE`.

    Example:

    >>> encoder, decoder, vae = build_mlp_vae(latent_dim=2)
    >>> vae.compile(optimizer="adam")
    >>> burda = build_mlp_vae(intermediate_dim=(200, 200), activation="tanh", latent_dim=50,
    ...                       loss="bce_logits")
    """
    _check_loss(loss)
    widths = (intermediate_dim,) if isinstance(intermediate_dim, int) else tuple(intermediate_dim)
    # One hidden layer keeps the original examples' names (their weights files load by them).
    names = [""] if len(widths) == 1 else [f"_{i + 1}" for i in range(len(widths))]
    inputs = keras.Input(shape=(original_dim,), name="encoder_input")
    x = inputs
    for width, name in zip(widths, names):
        x = layers.Dense(width, activation=activation, name=f"encoder_dense{name}")(x)
    encoder = _gaussian_encoder(inputs, x, latent_dim, seed)

    latent_inputs = keras.Input(shape=(latent_dim,), name="z_sampling")
    x = latent_inputs
    for width, name in zip(reversed(widths), names):
        x = layers.Dense(width, activation=activation, name=f"decoder_dense{name}")(x)
    outputs = layers.Dense(
        original_dim,
        activation=None if loss == "bce_logits" else "sigmoid",
        name="decoder_output",
        dtype=OUTPUT_DTYPE,
    )(x)
    decoder = keras.Model(latent_inputs, outputs, name="decoder")
    return _assemble(encoder, decoder, loss, "vae_mlp", (original_dim,), beta=beta, k=k)


@records_architecture
def build_cnn_vae(
    input_shape=(28, 28, 1),
    filters=16,
    kernel_size=3,
    latent_dim=2,
    loss="bce",
    seed=None,
    beta=1.0,
    k=1,
):
    """The convolutional VAE of the Keras example `variational_autoencoder_deconv.py`.

    Encoder: two `Conv2D(relu, stride 2, same)` doubling the filters
    (`2 * filters`, `4 * filters`), `Flatten`, `Dense(16, relu)`, then
    `z_mean`, `z_log_var`, `z`. Decoder: `Dense(relu)`, `Reshape`, two
    `Conv2DTranspose(relu, stride 2)` halving the filters, and
    `Conv2DTranspose(channels, sigmoid)` named `decoder_output`.

    Args:
        input_shape: `(height, width, channels)`; height and width divisible by 4.
        filters: base number of filters (the first convolution has twice this).
        kernel_size: size of every convolution kernel.
        latent_dim: dimension of z.
        loss: reconstruction term, `"bce"` or `"mse"`.
        seed: seed of the sampling layer's random stream, or `None`.
        beta: weight of the KL term in the loss (see `VAE`).
        k: draws of z per example; above 1 the loss is the IWAE bound (see `VAE`).

    Returns:
        `(encoder, decoder, vae)` as for `build_mlp_vae`.

    Example:

    >>> encoder, decoder, vae = build_cnn_vae()
    >>> vae.compile(optimizer="rmsprop")
    """
    _refuse_logits_loss(loss)
    inputs = keras.Input(shape=input_shape, name="encoder_input")
    x = inputs
    for i in range(2):
        filters *= 2
        x = Conv2D(
            filters,
            kernel_size,
            activation="relu",
            strides=2,
            padding="same",
            name=f"encoder_conv_{i + 1}",
        )(x)
    feature_shape = tuple(x.shape[1:])
    x = layers.Flatten(name="encoder_flatten")(x)
    x = layers.Dense(16, activation="relu", name="encoder_dense")(x)
    encoder = _gaussian_encoder(inputs, x, latent_dim, seed)

    latent_inputs = keras.Input(shape=(latent_dim,), name="z_sampling")
    x = layers.Dense(math.prod(feature_shape), activation="relu", name="decoder_dense")(
        latent_inputs
    )
    x = layers.Reshape(feature_shape, name="decoder_reshape")(x)
    for i in range(2):
        x = Conv2DTranspose(
            filters,
            kernel_size,
            activation="relu",
            strides=2,
            padding="same",
            name=f"decoder_deconv_{i + 1}",
        )(x)
        filters //= 2
    outputs = Conv2DTranspose(
        input_shape[-1],
        kernel_size,
        activation="sigmoid",
        padding="same",
        name="decoder_output",
        dtype=OUTPUT_DTYPE,
    )(x)
    decoder = keras.Model(latent_inputs, outputs, name="decoder")
    return _assemble(encoder, decoder, loss, "vae_cnn", input_shape, beta=beta, k=k)


@records_architecture
def build_conv_vae(
    input_shape=(28, 28, 1),
    latent_dim=50,
    loss="bce_logits",
    kl="analytic",
    seed=None,
    beta=1.0,
    k=1,
):
    """The convolutional VAE of the TensorFlow tutorial "Convolutional Variational Autoencoder".

    Encoder: `Conv2D(32, 3, stride 2, relu)`, `Conv2D(64, 3, stride 2, relu)`
    (valid padding, as the tutorial: 28 -> 13 -> 6), `Flatten`, then the
    Gaussian heads `z_mean`, `z_log_var` and the sampled `z`. The tutorial's
    single `Dense(2 * latent_dim)` split in halves is the same function as
    these two `Dense(latent_dim)` heads side by side. Decoder:
    `Dense(7 * 7 * 32, relu)` (for 28x28 images), `Reshape`,
    `Conv2DTranspose(64, 3, stride 2, relu)`, `Conv2DTranspose(32, 3,
    stride 2, relu)` and `Conv2DTranspose(channels, 3)` named
    `decoder_output`, all `same` padding, giving logits.

    Args:
        input_shape: `(height, width, channels)`; height and width divisible
            by 4 (the decoder upsamples a quarter of them twice: 7 -> 14 -> 28).
        latent_dim: dimension of z (the tutorial's 50 by default).
        loss: `"bce_logits"` (Bernoulli likelihood of the logits, the
            tutorial's), or `"bce"` / `"mse"`, which put a sigmoid on the
            decoder's output.
        kl: `"analytic"` or `"monte_carlo"`, see `VAE`.
        seed: seed of the sampling layer's random stream, or `None`.
        beta: weight of the KL term in the loss (see `VAE`).
        k: draws of z per example; above 1 the loss is the IWAE bound (see `VAE`).

    Returns:
        `(encoder, decoder, vae)`: the encoder outputs `[z_mean, z_log_var,
        z]`, the decoder maps z to logits (pixel probabilities are their
        sigmoid; probabilities directly with `loss="bce"` or `"mse"`), and
        `vae` is a `VAE` named `cvae`.

    Example:

    >>> encoder, decoder, vae = build_conv_vae(latent_dim=50)
    >>> vae.compile(optimizer=keras.optimizers.Adam(1e-4))
    >>> digits = keras.ops.sigmoid(decoder(keras.random.normal((16, 50))))
    """
    _check_loss(loss)
    inputs = keras.Input(shape=input_shape, name="encoder_input")
    x = Conv2D(32, 3, strides=2, activation="relu", name="encoder_conv_1")(inputs)
    x = Conv2D(64, 3, strides=2, activation="relu", name="encoder_conv_2")(x)
    x = layers.Flatten(name="encoder_flatten")(x)
    encoder = _gaussian_encoder(inputs, x, latent_dim, seed)

    latent_inputs = keras.Input(shape=(latent_dim,), name="z_sampling")
    # Two stride-2 transposed convolutions upsample 4x: from 7x7 for MNIST.
    start = (input_shape[0] // 4, input_shape[1] // 4, 32)
    x = layers.Dense(math.prod(start), activation="relu", name="decoder_dense")(latent_inputs)
    x = layers.Reshape(start, name="decoder_reshape")(x)
    x = Conv2DTranspose(
        64, 3, strides=2, padding="same", activation="relu", name="decoder_deconv_1"
    )(x)
    x = Conv2DTranspose(
        32, 3, strides=2, padding="same", activation="relu", name="decoder_deconv_2"
    )(x)
    outputs = Conv2DTranspose(
        input_shape[-1],
        3,
        padding="same",
        activation=None if loss == "bce_logits" else "sigmoid",
        name="decoder_output",
        dtype=OUTPUT_DTYPE,
    )(x)
    decoder = keras.Model(latent_inputs, outputs, name="decoder")
    return _assemble(encoder, decoder, loss, "cvae", input_shape, kl=kl, beta=beta, k=k)


# The image VAE's widths: 32 filters in the first stage, doubling at each
# stage up to this cap, as the CelebA networks of PyTorch-VAE's VanillaVAE.
IMAGE_FILTERS = 32
IMAGE_MAX_FILTERS = 256


def image_stages(image_size):
    """Stride-2 stages that take the shorter side of `(height, width)` to about 4 pixels."""
    return max(1, round(math.log2(min(image_size) / 4)))


def image_latent_dim(input_shape):
    """A latent size for an image: one code per 96 pixel values, 16 to 512 (128 at 64x64x3)."""
    return int(min(max(math.prod(input_shape) // 96, 16), 512))


@records_architecture
def build_image_vae(
    input_shape=(64, 64, 3),
    latent_dim=None,
    filters=IMAGE_FILTERS,
    max_filters=IMAGE_MAX_FILTERS,
    likelihood="logistic",
    seed=None,
    beta=1.0,
    k=1,
):
    """A convolutional VAE sized for photographs of 32 to 256 pixels a side.

    It follows the VanillaVAE of PyTorch-VAE (AntixK), the network behind the
    usual CelebA 64x64 runs, with the depth set by the image: stride-2
    stages until the shorter side is about 4 pixels (3 stages for 32, 4 for
    64, 5 for 128, 6 for 256), the filters doubling at each stage from
    `filters` up to `max_filters`.

    Encoder: per stage `Conv2D(3, stride 2, same)`, `BatchNormalization`,
    `LeakyReLU` (PyTorch's slope 0.01), then `Flatten` and the Gaussian heads.
    Decoder: `Dense` to the last stage's map, then per stage, in reverse,
    `Conv2DTranspose(3, stride 2, same)`, `BatchNormalization`, `LeakyReLU`,
    and a `Conv2D(channels, 3, same)` with a sigmoid: the mean of each pixel
    in [0, 1] (VanillaVAE's tanh is for pixels in [-1, 1]).

    The likelihood is `vae.losses.DiscretizedLogistic` by default: a proper
    probability of 8-bit pixels with a learned scale per channel, so the
    loss reads as bits per dimension (`vae.losses.bits_per_dimension`).

    Args:
        input_shape: `(height, width, channels)`; height and width divisible
            by `2 ** image_stages((height, width))`.
        latent_dim: dimension of z; `None` for `image_latent_dim(input_shape)`.
        filters: filters of the first stage.
        max_filters: the cap of the doubling.
        likelihood: `"logistic"` (the discretized logistic), or `"mse"` /
            `"bce"` as the other builders.
        seed: seed of the sampling layer's random stream, or `None`.
        beta: weight of the KL term in the loss (see `VAE`).
        k: draws of z per example; above 1 the loss is the IWAE bound (see `VAE`).

    Returns:
        `(encoder, decoder, vae)`; `vae` is a `VAE` named `vae_images`.

    Example:

    >>> encoder, decoder, vae = build_image_vae((64, 64, 3))
    >>> vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    """
    height, width, channels = input_shape
    stages = image_stages((height, width))
    if height % 2**stages or width % 2**stages:
        raise ValueError(
            f"images of {height}x{width} need height and width divisible by {2**stages} "
            f"({stages} stride-2 stages)"
        )
    if latent_dim is None:
        latent_dim = image_latent_dim(input_shape)
    widths = [min(filters * 2**i, max_filters) for i in range(stages)]  # filters per stage

    def stage(x, convolution, stage_filters, name):
        x = convolution(stage_filters, 3, strides=2, padding="same", name=f"{name}_conv")(x)
        # PyTorch's momentum (0.1 there, 0.9 in Keras's terms), as the reference.
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_norm")(x)
        return layers.LeakyReLU(0.01, name=f"{name}_relu")(x)

    inputs = keras.Input(shape=input_shape, name="encoder_input")
    x = inputs
    for i, stage_filters in enumerate(widths):
        x = stage(x, Conv2D, stage_filters, f"encoder_{i + 1}")
    x = layers.Flatten(name="encoder_flatten")(x)
    encoder = _gaussian_encoder(inputs, x, latent_dim, seed)

    latent_inputs = keras.Input(shape=(latent_dim,), name="z_sampling")
    start = (height // 2**stages, width // 2**stages, widths[-1])
    x = layers.Dense(math.prod(start), name="decoder_dense")(latent_inputs)
    x = layers.Reshape(start, name="decoder_reshape")(x)
    for i, stage_filters in enumerate(reversed(widths)):
        x = stage(x, Conv2DTranspose, stage_filters, f"decoder_{i + 1}")
    if likelihood == "logistic":
        loss = DiscretizedLogistic(channels, name="likelihood")
    else:
        _check_loss(likelihood)
        _refuse_logits_loss(likelihood)
        loss = likelihood
    outputs = Conv2D(
        channels,
        3,
        padding="same",
        activation="sigmoid",
        name="decoder_output",
        dtype=OUTPUT_DTYPE,
    )(x)
    decoder = keras.Model(latent_inputs, outputs, name="decoder")
    return _assemble(encoder, decoder, loss, "vae_images", input_shape, beta=beta, k=k)


BUILDERS = {
    builder.__name__: builder
    for builder in (build_mlp_vae, build_cnn_vae, build_conv_vae, build_image_vae)
}
