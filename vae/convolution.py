"""Exact, faster drop-ins for `keras.layers.Conv2D` and `Conv2DTranspose`: same weights.

On JAX, XLA's CPU convolutions are slow for the CNN VAEs' small layers, and
the gradient of a strided transposed convolution becomes an lhs-dilated
convolution that took 10 to 15 times the time of the form below
(benchmarks/README.md has the profile). These layers compute the same
function as matrix multiplies plus cheap data movement, written in
`keras.ops` so that every backend differentiates it itself:

- `Conv2D`: the input's patches side by side (im2col), times the kernel
  reshaped to `(kh * kw * channels, filters)`.
- `Conv2DTranspose`: phase by phase, with no multiplication by inserted
  zeros. Output pixel `o = stride * i + a` receives input pixel `i` through
  kernel tap `a`. Split the output by phase `r = o mod stride`: phase `r`
  takes the taps `a = r + stride * q` (q = 0, 1, ...), and tap `a` reaches
  phase row `i + q`. So a phase is one matrix multiply of every input pixel
  by its taps side by side, `(channels, taps * filters)`, then each tap's
  product shifted by its `q` rows (and likewise columns) and added. The
  phases are interleaved (`depth_to_space`) and cropped as Keras crops its
  "same" or "valid" output. For kernel 3 and stride 2, phase 0 takes taps 0
  and 2 (shifts 0 and 1) and phase 1 takes tap 1 (shift 0), in each
  dimension: 4 + 2 + 2 + 1 = 9 taps, exactly the work of the convolution. With
  stride 1 there is one phase, all taps in one product (col2im).

Both are subclasses of the Keras layers with the same constructor, the same
`kernel` and `bias` variables and the same config, so every weights file of
the plain layers loads into them unchanged. Configurations outside the fast
path (channels_first, dilation, groups, `output_padding`), and backends
where it does not pay (`FAST_BACKENDS`), call Keras's own convolution.
"""

import keras
from keras import ops


def _same_padding(size, kernel, stride):
    """Keras's (TensorFlow's) "same" padding of a strided convolution: (before, after)."""
    output = -(-size // stride)
    total = max((output - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pixelwise_matmul(images, matrix):
    """`images @ matrix` at every pixel, as one two-dimensional matrix multiply."""
    _, height, width, channels = images.shape
    product = ops.matmul(ops.reshape(images, (-1, channels)), matrix)
    return ops.reshape(product, (-1, height, width, matrix.shape[1]))


def conv2d(inputs, kernel, strides, padding):
    """`ops.conv(inputs, kernel, strides, padding)` (channels_last) as im2col and a matmul."""
    (kh, kw, channels, filters), (sh, sw) = kernel.shape, strides
    height, width = inputs.shape[1], inputs.shape[2]
    if padding == "same":
        rows, cols = _same_padding(height, kh, sh), _same_padding(width, kw, sw)
        inputs = ops.pad(inputs, ((0, 0), rows, cols, (0, 0)))
        height, width = height + sum(rows), width + sum(cols)
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    patches = ops.concatenate(
        [
            inputs[:, a : a + (out_h - 1) * sh + 1 : sh, b : b + (out_w - 1) * sw + 1 : sw, :]
            for a in range(kh)
            for b in range(kw)
        ],
        axis=-1,
    )
    return _pixelwise_matmul(patches, ops.reshape(kernel, (kh * kw * channels, filters)))


def conv2d_transpose(inputs, kernel, strides, padding):
    """`ops.conv_transpose(inputs, kernel, strides, padding)` (channels_last), phase by
    phase: one matrix multiply per output phase, then shifted adds (see the module's
    docstring)."""
    (kh, kw, filters, _), (sh, sw) = kernel.shape, strides
    height, width = inputs.shape[1], inputs.shape[2]
    shifts_h, shifts_w = -(-kh // sh), -(-kw // sw)  # the most taps a phase takes per axis
    rows_h, rows_w = height + shifts_h - 1, width + shifts_w - 1  # every phase's size

    def phase(r_h, r_w):
        taps = [(a, b) for a in range(r_h, kh, sh) for b in range(r_w, kw, sw)]
        if not taps:  # a kernel smaller than its stride leaves this phase empty
            return ops.zeros((ops.shape(inputs)[0], rows_h, rows_w, filters), inputs.dtype)
        # All of the phase's taps in one product: (channels, taps * filters).
        matrix = ops.concatenate([ops.transpose(kernel[a, b]) for a, b in taps], axis=1)
        products = ops.split(_pixelwise_matmul(inputs, matrix), len(taps), axis=-1)
        shifted = [
            ops.pad(
                product,
                (
                    (0, 0),
                    (a // sh, shifts_h - 1 - a // sh),
                    (b // sw, shifts_w - 1 - b // sw),
                    (0, 0),
                ),
            )
            for product, (a, b) in zip(products, taps)
        ]
        return sum(shifted[1:], shifted[0])

    if sh == sw == 1:
        full = phase(0, 0)
    else:  # interleave the phases: output pixel (sh * i + r_h, sw * j + r_w)
        full = ops.stack(
            [ops.stack([phase(r_h, r_w) for r_w in range(sw)], axis=3) for r_h in range(sh)],
            axis=2,
        )
        full = ops.reshape(full, (-1, rows_h * sh, rows_w * sw, filters))
    # Keras's output size and crop: "same" gives stride x size and crops as
    # the gradient of a "same" convolution pads; "valid" keeps everything.
    if padding == "same":
        out_h, out_w = height * sh, width * sw
        top, left = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
    else:
        out_h, out_w = height * sh + max(kh - sh, 0), width * sw + max(kw - sw, 0)
        top = left = 0
    return full[:, top : top + out_h, left : left + out_w, :]


# Where the fast paths pay (benchmarks/README.md). On JAX they made the CNN
# VAE's step 6.5 times faster: XLA's CPU convolutions, above all the gradient
# of a strided transposed one, are slow. TensorFlow and PyTorch hand
# convolutions to oneDNN, which ran this VAE's step faster than their
# matrix-multiply form (33 against 97 ms and 63 against 84 ms).
FAST_BACKENDS = ("jax",)


def _plain(layer):
    """Whether `layer` computes with Keras's own convolution: a configuration the
    fast path does not cover, or a backend where it does not pay."""
    return (
        keras.config.backend() not in FAST_BACKENDS
        or layer.data_format != "channels_last"
        or tuple(layer.dilation_rate) != (1, 1)
        or getattr(layer, "groups", 1) != 1
        or getattr(layer, "output_padding", None) is not None
    )


@keras.saving.register_keras_serializable(package="vae")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`, computed on JAX as im2col and one matrix multiply.

    Same arguments, variables and weights files as the Keras layer; outputs
    and gradients equal within float32 rounding. On backends outside
    `FAST_BACKENDS` it is Keras's layer.

    Example:

    >>> layer = Conv2D(32, 3, strides=2, padding="same", activation="relu")
    >>> layer(np.zeros((1, 28, 28, 1))).shape
    (1, 14, 14, 32)
    """

    def convolution_op(self, inputs, kernel):
        if _plain(self):
            return super().convolution_op(inputs, kernel)
        return conv2d(inputs, kernel, self.strides, self.padding)


@keras.saving.register_keras_serializable(package="vae")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose`, computed on JAX phase by phase: a matrix
    multiply per output phase and shifted adds.

    Same arguments, variables and weights files as the Keras layer; outputs
    and gradients equal within float32 rounding. On backends outside
    `FAST_BACKENDS` it is Keras's layer.

    Example:

    >>> layer = Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")
    >>> layer(np.zeros((1, 14, 14, 64))).shape
    (1, 28, 28, 32)
    """

    def call(self, inputs):
        if _plain(self):
            return super().call(inputs)
        outputs = conv2d_transpose(inputs, self.kernel, self.strides, self.padding)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs
