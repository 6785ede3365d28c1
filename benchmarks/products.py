"""What bounds the MLP VAE's step: its five large matrix products alone, on one core and on all.

A training step of the MLP VAE (784-512-2-512-784, batch 128) multiplies
five products of 128 x 784 x 512 multiply-accumulates each: forward `x W1`
and `h W2`, backward `h^T dy` (the gradient of W2), `dy W2^T` (of h) and
`x^T dh` (of W1); the digits need no gradient. The rest of the step (the
small latent layers, the loss, Adam) adds to this. This script chains the
five products in one compiled loop, so that nothing but them runs, on JAX
and on TensorFlow with XLA, each in its own process: pinned to one core, and
on every core of the machine; optionally under extra `XLA_FLAGS`. It prints
their time per step, their speed, and the epoch (469 steps of 60,000 digits)
that the products alone would take: with these kernels, no implementation
of this model on the same engine trains faster than that.

    python benchmarks/products.py
    python benchmarks/products.py --backends jax --xla-flags "" \
        --xla-flags=--xla_cpu_experimental_ynn_fusion_type=

The inputs are zeros: a CPU's multiply takes the same time whatever the
values, and zeros stay zeros through the chain (no overflow, no subnormals).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.throughput import BATCH_SIZE, PIXELS  # noqa: E402

HIDDEN = 512
SHAPES = ((BATCH_SIZE, PIXELS), (PIXELS, HIDDEN), (HIDDEN, PIXELS))  # x, W1, W2
STEPS_PER_EPOCH = -(-60_000 // BATCH_SIZE)
FLOP_PER_STEP = 5 * 2 * BATCH_SIZE * PIXELS * HIDDEN
REPEATS, ROUNDS = 50, 15


def chain(ops, x, w1, w2):
    """One step's five products (`ops`: `jax.numpy` or `tensorflow`); the next
    round's inputs are this round's results, so that the compiler can neither
    hoist nor drop a product."""
    h = ops.matmul(x, w1)  # forward, encoder
    y = ops.matmul(h, w2)  # forward, decoder
    dw2 = ops.matmul(ops.transpose(h), y)  # gradient of W2
    dh = ops.matmul(y, ops.transpose(w2))  # gradient of h
    dw1 = ops.matmul(ops.transpose(x), dh)  # gradient of W1
    return y, dw1, dw2


def jax_loop():
    import jax
    import jax.numpy as jnp

    @jax.jit
    def loop(x, w1, w2):
        return jax.lax.fori_loop(0, REPEATS, lambda _, c: chain(jnp, *c), (x, w1, w2))

    def run(args):
        return jax.block_until_ready(loop(*args))

    return run, [jnp.zeros(shape, jnp.float32) for shape in SHAPES]


def tensorflow_loop():
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def loop(x, w1, w2):
        return tf.while_loop(
            lambda i, *c: i < REPEATS, lambda i, *c: (i + 1, *chain(tf, *c)), (0, x, w1, w2)
        )[1:]

    def run(args):
        return [t.numpy() for t in loop(*args)]

    return run, [tf.zeros(shape, tf.float32) for shape in SHAPES]


def worker(backend, cores):
    """Prints the median seconds per step of the five products, as JSON."""
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    run, args = {"jax": jax_loop, "tensorflow": tensorflow_loop}[backend]()
    run(args)  # compile
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run(args)
        times.append((time.perf_counter() - start) / REPEATS)
    print(json.dumps(statistics.median(times)))


def measure(backend, cores, xla_flags):
    env = {**os.environ, "XLA_FLAGS": xla_flags}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", backend, str(cores)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backends", nargs="+", default=["jax", "tensorflow"], choices=["jax", "tensorflow"]
    )
    parser.add_argument(
        "--xla-flags",
        action="append",
        metavar="FLAGS",
        help="XLA_FLAGS of a variant; repeat for several, and write "
        "--xla-flags=--xla_... for flags (default: the current XLA_FLAGS)",
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit(
            "products.py pins its processes to cores, which needs Linux "
            "(os.sched_setaffinity): run it there"
        )
    if args.worker:
        return worker(args.worker[0], int(args.worker[1]))
    all_cores = len(os.sched_getaffinity(0))
    print(
        f"the MLP VAE's five products: {FLOP_PER_STEP / 1e9:.3f} GFLOP per step of {BATCH_SIZE}, "
        f"{STEPS_PER_EPOCH} steps per epoch; {all_cores} cores\n"
    )
    print(
        "| backend | XLA_FLAGS | cores | ms per step | GFLOP/s | epoch of the products alone, s |"
    )
    print("|---|---|---|---|---|---|")
    for backend in args.backends:
        for flags in args.xla_flags or [os.environ.get("XLA_FLAGS", "")]:
            for cores in sorted({1, all_cores}):
                seconds = measure(backend, cores, flags)
                print(
                    f"| {backend} | {flags or '(none)'} | {cores} | {seconds * 1e3:.3f} | "
                    f"{FLOP_PER_STEP / seconds / 1e9:.0f} | {seconds * STEPS_PER_EPOCH:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
