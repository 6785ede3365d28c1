"""Where a training step goes: the package's VAE, layer by layer, on TensorFlow or JAX.

Times each layer's forward and backward pass (gradients of the input and
the weights) on a batch of 128, alone, compiled, and sets the sum beside a
whole training step (`train_on_batch`). For the convolutions it also times
Keras's own layer with the same configuration, so the table shows what
`vae/convolution.py`'s matrix-multiply form gains or loses on this backend
(it is used where `FAST_BACKENDS` says; elsewhere both columns are Keras's op). The
GFLOP/s column says how close each layer comes to the machine's
matrix-multiply speed, which bounds what any implementation can reach.

    python benchmarks/layer_profile.py --model cnn
    python benchmarks/layer_profile.py --model cnn --backend jax
    python benchmarks/layer_profile.py --model mlp --jit-compile True
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.throughput import BATCH_SIZE, machine_peak_gflops  # noqa: E402


def forward_macs(layer):
    """Multiply-accumulates of one digit through `layer` (0 for layers without weights)."""
    import keras

    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    weights = 1
    for size in kernel.shape:
        weights *= size
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input pixel scatters the whole kernel.
        height, width = layer.input.shape[1:3]
    elif isinstance(layer, keras.layers.Conv2D):
        # Every output pixel gathers the whole kernel.
        height, width = layer.output.shape[1:3]
    else:
        height = width = 1
    return height * width * weights


def median_seconds(function, repeats):
    function()  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layer_step(layer, input_shape, output_shape, jit_compile):
    """A compiled forward and backward pass of `layer` alone on a random batch."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH_SIZE, *input_shape)).astype("float32")
    upstream = rng.standard_normal((BATCH_SIZE, *output_shape)).astype("float32")
    if keras.config.backend() == "jax":
        import jax

        variables = [v.value for v in layer.trainable_variables]

        def loss(variables, x):
            y, _ = layer.stateless_call(variables, [], x)
            return (y * upstream).sum()

        gradients = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return lambda: jax.block_until_ready(gradients(variables, x))
    import tensorflow as tf

    x = tf.constant(x)

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        return tape.gradient(loss, [x, *layer.trainable_variables])

    return lambda: [g.numpy() for g in step()]


def keras_twin(layer):
    """Keras's own layer of the same class name and configuration, built, or None."""
    import keras

    if type(layer).__module__ != "vae.convolution":
        return None
    twin = getattr(keras.layers, type(layer).__name__).from_config(layer.get_config())
    twin.build(layer.input.shape)
    return twin


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["mlp", "cnn"], default="cnn")
    parser.add_argument("--backend", choices=["tensorflow", "jax"], default="tensorflow")
    parser.add_argument(
        "--jit-compile",
        choices=["True", "False"],
        default="False",
        help="XLA for the layers on TensorFlow (default False; JAX always)",
    )
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from vae import build_cnn_vae, build_mlp_vae

    jit = args.jit_compile == "True"
    encoder, decoder, vae = build_mlp_vae() if args.model == "mlp" else build_cnn_vae()
    vae.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        jit_compile=jit if args.backend == "tensorflow" else "auto",
    )
    x = np.random.default_rng(0).random((BATCH_SIZE, *encoder.input.shape[1:]), dtype=np.float32)
    whole = median_seconds(lambda: vae.train_on_batch(x), args.repeats)

    peak = machine_peak_gflops()
    rows, total = [], 0.0
    for part in (encoder, decoder):
        for layer in part.layers:
            macs = forward_macs(layer)
            if not macs:
                continue
            shapes = (layer.input.shape[1:], layer.output.shape[1:])
            seconds = median_seconds(layer_step(layer, *shapes, jit), args.repeats)
            twin = keras_twin(layer)
            keras_ms = (
                median_seconds(layer_step(twin, *shapes, jit), args.repeats) * 1e3
                if twin is not None
                else None
            )
            total += seconds
            flops = 3 * 2 * macs * BATCH_SIZE  # forward, and two products backward
            rows.append(
                (
                    layer.name,
                    str(tuple(shapes[1])),
                    flops / 1e9,
                    seconds * 1e3,
                    keras_ms,
                    flops / seconds / 1e9,
                )
            )
    print(
        f"{args.model.upper()} VAE on {args.backend}, batch {BATCH_SIZE}, "
        f"jit_compile={jit or args.backend == 'jax'}; machine peak {peak:.0f} GFLOP/s "
        "(NumPy float32 matrix multiply)"
    )
    print(
        "| layer | output | GFLOP per step | ms per step | Keras's own layer, ms | GFLOP/s "
        "| share of step |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, shape, gflop, ms, keras_ms, rate in rows:
        theirs = f"{keras_ms:.1f}" if keras_ms is not None else ""
        print(
            f"| {name} | {shape} | {gflop:.2f} | {ms:.1f} | {theirs} | {rate:.0f} | "
            f"{ms / 1e3 / whole:.0%} |"
        )
    print(
        f"| layers alone, summed | | {sum(r[2] for r in rows):.2f} | {total * 1e3:.1f} | | "
        f"{sum(r[2] for r in rows) / total:.0f} | {total / whole:.0%} |"
    )
    print(f"| whole training step (train_on_batch) | | | {whole * 1e3:.1f} | | | 100% |")


if __name__ == "__main__":
    main()
