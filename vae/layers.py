"""The reparameterization trick, as a layer and as the seeds' function."""

import keras
from keras import ops

from vae.distribute import replica


def sampling(args):
    """Draws `z ~ N(z_mean, exp(z_log_var))` with the reparameterization trick.

    The function form of the original Keras examples, for code that wraps it
    in a `Lambda`. Models built by this package use the `Sampling` layer
    instead: it is seedable and loads from a `.keras` file in safe mode.

    Args:
        args: `[z_mean, z_log_var]`, two tensors of shape `(batch, latent_dim)`.

    Returns:
        `z = z_mean + exp(0.5 * z_log_var) * eps` with `eps ~ N(0, I)`.

    Example:

    >>> z = sampling([np.zeros((4, 2)), np.zeros((4, 2))])  # standard normal
    """
    z_mean, z_log_var = (ops.convert_to_tensor(arg) for arg in args)
    epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype)
    return z_mean + ops.exp(0.5 * z_log_var) * epsilon


@keras.saving.register_keras_serializable(package="vae")
class Sampling(keras.layers.Layer):
    """Samples `z` from `N(z_mean, exp(z_log_var))`, differentiably.

    Args:
        seed: integer seed of the layer's random stream, or `None`.

    Call arguments:
        inputs: `[z_mean, z_log_var]`.

    Returns:
        `z`, of the shape of `z_mean`.

    Example:

    >>> z = Sampling(seed=1)([z_mean, z_log_var])
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        # Computed in float32 even under a mixed-precision policy: exp of a
        # half-precision log-variance overflows easily.
        z_mean = ops.cast(z_mean, "float32")
        z_log_var = ops.cast(z_log_var, "float32")
        shape = ops.shape(z_mean)
        index, replicas = replica()
        if replicas == 1:
            epsilon = keras.random.normal(shape, dtype="float32", seed=self.seed_generator)
        else:
            # Each replica of a tf.distribute step holds the same seed state:
            # one draw for all of them, a slice each, so their noise differs
            # and, put together, is what one device draws for the whole batch.
            epsilon = keras.random.normal(
                (replicas, *shape), dtype="float32", seed=self.seed_generator
            )[index]
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
