import keras
import numpy as np
import pytest
from keras import ops

from vae.convolution import Conv2D, Conv2DTranspose, conv2d, conv2d_transpose

# Run on every Keras backend (pytest -m core).
pytestmark = pytest.mark.core

# (input shape, kernel size, strides, padding, filters): one and many
# channels in and out, the CNN VAEs' own layers first, then odd sizes,
# rectangular kernels, and kernels smaller than, equal to and larger than
# their strides.
CONVOLUTIONS = [
    ((3, 28, 28, 1), (3, 3), (2, 2), "same", 32),
    ((3, 14, 14, 32), (3, 3), (2, 2), "same", 64),
    ((3, 28, 28, 1), (3, 3), (2, 2), "valid", 32),
    ((3, 13, 13, 32), (3, 3), (2, 2), "valid", 64),
    ((2, 9, 11, 3), (3, 2), (1, 3), "same", 5),
    ((2, 9, 10, 4), (4, 4), (2, 2), "same", 1),
    ((2, 8, 7, 2), (1, 1), (1, 1), "valid", 3),
]
TRANSPOSED = [
    ((3, 7, 7, 64), (3, 3), (2, 2), "same", 64),
    ((3, 14, 14, 64), (3, 3), (2, 2), "same", 32),
    ((3, 28, 28, 32), (3, 3), (1, 1), "same", 1),
    ((2, 5, 6, 1), (3, 3), (2, 2), "valid", 3),
    ((2, 5, 6, 2), (4, 2), (2, 3), "same", 3),
    ((2, 5, 6, 2), (4, 2), (3, 3), "valid", 1),
    ((2, 5, 6, 2), (5, 5), (2, 2), "same", 4),
]


def _value_and_gradients(function, x, kernel, upstream):
    """`function(x, kernel)` and the gradients of `sum(function(x, kernel) * upstream)`."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x, kernel = tf.constant(x), tf.constant(kernel)
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = function(x, kernel)
            loss = tf.reduce_sum(y * upstream)
        return [np.asarray(t) for t in (y, *tape.gradient(loss, [x, kernel]))]
    if backend == "jax":
        import jax

        def loss(x, kernel):
            y = function(x, kernel)
            return (y * upstream).sum(), y

        (_, y), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(x, kernel)
        return [np.asarray(t) for t in (y, *grads)]
    import torch

    x, kernel = (torch.tensor(t, requires_grad=True) for t in (x, kernel))
    y = function(x, kernel)
    (y * torch.tensor(upstream)).sum().backward()
    return [t.detach().cpu().numpy() for t in (y, x.grad, kernel.grad)]


def _assert_same_function(fast, reference, x_shape, kernel_shape, output_shape_of):
    rng = np.random.default_rng(sum(x_shape) + sum(kernel_shape))
    x = rng.standard_normal(x_shape).astype("float32")
    kernel = rng.standard_normal(kernel_shape).astype("float32")
    expected = ops.convert_to_numpy(
        reference(ops.convert_to_tensor(x), ops.convert_to_tensor(kernel))
    )
    upstream = rng.standard_normal(expected.shape).astype("float32")
    ours = _value_and_gradients(fast, x, kernel, upstream)
    theirs = _value_and_gradients(reference, x, kernel, upstream)
    assert ours[0].shape == expected.shape == output_shape_of
    for name, a, b in zip(["output", "input gradient", "kernel gradient"], ours, theirs):
        # float32 rounding of sums of up to a few thousand products of O(1) terms
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * scale, err_msg=name)


def _output_size(size, kernel, stride, padding, transposed):
    if transposed:
        return size * stride + (max(kernel - stride, 0) if padding == "valid" else 0)
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


@pytest.mark.parametrize("x_shape, kernel_size, strides, padding, filters", CONVOLUTIONS)
def test_conv2d_equals_keras_convolution_in_output_and_gradients(
    x_shape, kernel_size, strides, padding, filters
):
    kernel_shape = (*kernel_size, x_shape[-1], filters)
    out = tuple(
        _output_size(n, k, s, padding, False) for n, k, s in zip(x_shape[1:3], kernel_size, strides)
    )
    _assert_same_function(
        lambda x, k: conv2d(x, k, strides, padding),
        lambda x, k: ops.conv(x, k, strides=strides, padding=padding),
        x_shape,
        kernel_shape,
        (x_shape[0], *out, filters),
    )


@pytest.mark.parametrize("x_shape, kernel_size, strides, padding, filters", TRANSPOSED)
def test_conv2d_transpose_equals_keras_transposed_convolution_in_output_and_gradients(
    x_shape, kernel_size, strides, padding, filters
):
    kernel_shape = (*kernel_size, filters, x_shape[-1])
    out = tuple(
        _output_size(n, k, s, padding, True) for n, k, s in zip(x_shape[1:3], kernel_size, strides)
    )
    _assert_same_function(
        lambda x, k: conv2d_transpose(x, k, strides, padding),
        lambda x, k: ops.conv_transpose(x, k, strides=strides, padding=padding),
        x_shape,
        kernel_shape,
        (x_shape[0], *out, filters),
    )


LAYERS = [
    (
        Conv2D,
        dict(filters=32, kernel_size=3, strides=2, padding="same", activation="relu"),
        (2, 28, 28, 1),
    ),
    (Conv2D, dict(filters=4, kernel_size=3, dilation_rate=2), (2, 9, 9, 3)),  # Keras's own op
    (
        Conv2DTranspose,
        dict(filters=32, kernel_size=3, strides=2, padding="same", activation="relu"),
        (2, 14, 14, 64),
    ),
    (
        Conv2DTranspose,
        dict(filters=1, kernel_size=3, padding="same", activation="sigmoid"),
        (2, 28, 28, 32),
    ),
    (
        Conv2DTranspose,
        dict(filters=2, kernel_size=3, strides=2, output_padding=1),
        (2, 5, 5, 3),
    ),  # Keras's own op
]


@pytest.mark.parametrize("layer_class, config, x_shape", LAYERS)
def test_layers_are_drop_ins_with_the_keras_layers_weights(layer_class, config, x_shape):
    ours = layer_class(**config, name="ours")
    theirs = getattr(keras.layers, layer_class.__name__)(**config, name="theirs")
    ours.build(x_shape)
    theirs.build(x_shape)
    rng = np.random.default_rng(0)
    theirs.set_weights(
        [rng.standard_normal(w.shape).astype("float32") * 0.3 for w in theirs.weights]
    )
    assert [(w.path.split("/")[-1], w.shape) for w in ours.weights] == [
        (w.path.split("/")[-1], w.shape) for w in theirs.weights
    ]
    ours.set_weights(theirs.get_weights())
    x = rng.standard_normal(x_shape).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x)), ops.convert_to_numpy(theirs(x)), rtol=0, atol=1e-4
    )
    clone = keras.layers.deserialize(keras.layers.serialize(ours))
    assert type(clone) is layer_class
    assert clone.get_config() == ours.get_config()


def test_weights_saved_from_plain_keras_layers_load_into_the_builders(tmp_path):
    from vae.models import build_cnn_vae

    encoder, decoder, vae = build_cnn_vae(seed=1)
    # The same architecture of plain Keras layers, as every file written
    # before these layers existed was: its weights file, loaded, must give
    # the same pixels.
    plain = keras.models.clone_model(
        decoder,
        clone_function=lambda layer: (
            getattr(keras.layers, type(layer).__name__).from_config(layer.get_config())
            if isinstance(layer, (Conv2D, Conv2DTranspose))
            else layer.__class__.from_config(layer.get_config())
        ),
    )
    assert not any(isinstance(layer, (Conv2D, Conv2DTranspose)) for layer in plain.layers)
    rng = np.random.default_rng(2)
    plain.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.2 for w in plain.weights])
    path = tmp_path / "decoder.weights.h5"
    plain.save_weights(path)
    decoder.load_weights(path)
    z = rng.standard_normal((5, 2)).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(decoder(z)), ops.convert_to_numpy(plain(z)), rtol=0, atol=1e-5
    )
