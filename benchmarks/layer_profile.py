"""Where a training step goes: the package's VAE on TensorFlow, layer by layer.

Times each layer's forward and backward pass (gradients of the input and
the weights) on a batch of 128, alone, as a compiled TensorFlow function, and
sets the sum beside a whole training step (`train_on_batch`). The table's
GFLOP/s column says how close each layer comes to the machine's
matrix-multiply speed, which bounds what any implementation can reach.

    python benchmarks/layer_profile.py --model cnn
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


def layer_step(layer, jit_compile):
    """A compiled forward and backward pass of `layer` alone on a random batch."""
    import tensorflow as tf

    shape = (BATCH_SIZE, *layer.input.shape[1:])
    x = tf.random.normal(shape)
    upstream = tf.random.normal((BATCH_SIZE, *layer.output.shape[1:]))

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        return tape.gradient(loss, [x, *layer.trainable_variables])

    return lambda: [g.numpy() for g in step()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["mlp", "cnn"], default="cnn")
    parser.add_argument("--jit-compile", choices=["True", "False"], default="False",
                        help="XLA for the layers and the step (default False)")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from vae import build_cnn_vae, build_mlp_vae

    jit = args.jit_compile == "True"
    encoder, decoder, vae = build_mlp_vae() if args.model == "mlp" else build_cnn_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
    x = np.random.default_rng(0).random((BATCH_SIZE, *encoder.input.shape[1:]), dtype=np.float32)
    whole = median_seconds(lambda: vae.train_on_batch(x), args.repeats)

    peak = machine_peak_gflops()
    rows, total = [], 0.0
    for part in (encoder, decoder):
        for layer in part.layers:
            macs = forward_macs(layer)
            if not macs:
                continue
            seconds = median_seconds(layer_step(layer, jit), args.repeats)
            total += seconds
            flops = 3 * 2 * macs * BATCH_SIZE  # forward, and two products backward
            rows.append((layer.name, str(tuple(layer.output.shape[1:])), flops / 1e9,
                         seconds * 1e3, flops / seconds / 1e9))
    print(f"{args.model.upper()} VAE on TensorFlow, batch {BATCH_SIZE}, jit_compile={jit}; "
          f"machine peak {peak:.0f} GFLOP/s (NumPy float32 matrix multiply)")
    print("| layer | output | GFLOP per step | ms per step | GFLOP/s | share of step |")
    print("|---|---|---|---|---|---|")
    for name, shape, gflop, ms, rate in rows:
        print(f"| {name} | {shape} | {gflop:.2f} | {ms:.1f} | {rate:.0f} | "
              f"{ms / 1e3 / whole:.0%} |")
    print(f"| layers alone, summed | | {sum(r[2] for r in rows):.2f} | {total * 1e3:.1f} | "
          f"{sum(r[2] for r in rows) / total:.0f} | {total / whole:.0%} |")
    print(f"| whole training step (train_on_batch) | | | {whole * 1e3:.1f} | | 100% |")


if __name__ == "__main__":
    main()
