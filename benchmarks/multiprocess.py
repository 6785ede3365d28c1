"""The cost of training in several processes: one process against two, per step.

The same MLP VAE, the same global batch and the same digits, trained three
ways on each engine, one after the other: one process on one device; one
process on the CPU split into two devices (TensorFlow's `MirroredStrategy`,
or JAX's `DataParallel` over `--xla_force_host_platform_device_count=2`, an
all-reduce in memory); two processes of one device each, started by
`python -m vae.launch` (`MultiWorkerMirroredStrategy` over gRPC, or JAX's
distributed runtime and Gloo, on 127.0.0.1). Each prints the time of a
training step: the median epoch after the first (which compiles the step)
over its steps. The table gives what the all-reduce adds. On a 2-core
machine the two processes share its cores, so no speed-up is expected: the
point is the price of the second process.

    python benchmarks/multiprocess.py --data ../shared/data/mnist
    python benchmarks/multiprocess.py --data ../shared/data/mnist --backend jax
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SPLIT_CPU = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="MNIST's IDX files (default: as load_mnist)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--digits", type=int, default=12800)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--backend", choices=["tensorflow", "jax"], default="tensorflow")
    parser.add_argument("--worker", choices=["plain", "distributed"], help=argparse.SUPPRESS)
    # What vae.launch gives each JAX process (keras.distribution.initialize's arguments).
    parser.add_argument("--coordinator", help=argparse.SUPPRESS)
    parser.add_argument("--num-processes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def worker(args):
    """Trains and prints `{"step_ms": ..., "workers": ..., "devices": ...}` (the chief only)."""
    import time

    import keras
    import numpy as np

    from vae import build_mlp_vae, load_mnist
    from vae.distribute import ProcessShare, data_parallel, is_chief, join_processes

    devices = ["one"]
    if args.worker == "distributed":
        join_processes(args.coordinator, args.num_processes, args.process_id)
        devices = data_parallel()
    keras.utils.set_random_seed(1)
    (x_train, _), _ = load_mnist(args.data, flatten=True)
    x_train = x_train[: args.digits]
    batch_size = args.batch_size
    if args.worker == "distributed" and args.backend == "jax":
        x_train, batch_size = ProcessShare(x_train, args.batch_size, seed=1), None
    _, _, vae = build_mlp_vae(seed=1)
    # TensorFlow as the scripts train (no XLA); JAX always compiles with XLA.
    vae.compile(optimizer="adam", jit_compile=args.backend == "jax")

    class EpochTimes(keras.callbacks.Callback):
        """Times whole epochs; timing each batch would time Keras's bookkeeping."""

        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            # Reads the loss, as the scripts' NaN check does, so one step at a
            # time is in flight: with several queued, the two XLA CPU devices
            # of one process deadlock in the all-reduce on two cores.
            float(logs["loss"])

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    epochs = EpochTimes()
    vae.fit(x_train, epochs=args.epochs, batch_size=batch_size, verbose=0, callbacks=[epochs])
    steps = -(-args.digits // args.batch_size)
    # The first epoch compiles the step.
    step_seconds = float(np.median(epochs.times[1:])) / steps
    if is_chief():
        print(json.dumps({"step_ms": 1000 * step_seconds, "devices": devices}))


def _run(command, env):
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        cwd=ROOT,
        timeout=1800,
    )
    if completed.returncode != 0:
        sys.exit(completed.stdout[-2000:] + completed.stderr[-3000:])
    line = next(line for line in reversed(completed.stdout.splitlines()) if '"step_ms"' in line)
    return json.loads(line[line.index("{") :])


def main():
    args = parse_args()
    if args.worker:
        return worker(args)
    flags = [
        "--batch-size",
        str(args.batch_size),
        "--digits",
        str(args.digits),
        "--epochs",
        str(args.epochs),
        "--backend",
        args.backend,
    ]
    if args.data:
        flags += ["--data", args.data]
    env = {"PYTHONPATH": str(ROOT), "KERAS_BACKEND": args.backend}
    me = str(Path(__file__).resolve())
    one_device = [sys.executable, me, "--worker", "plain", *flags]
    if args.backend == "tensorflow":
        two_devices = [
            sys.executable,
            "-c",
            SPLIT_CPU + "import runpy, sys\nsys.argv = sys.argv[1:]\n"
            "runpy.run_path(sys.argv[0], run_name='__main__')",
        ]
        two_devices_env = env
        engines = "MirroredStrategy", "MultiWorkerMirroredStrategy"
    else:
        two_devices = [sys.executable]
        two_devices_env = {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
        engines = "DataParallel", "DataParallel, Gloo"
    runs = {
        "one process, one device": _run(one_device, env),
        f"one process, two devices ({engines[0]})": _run(
            [*two_devices, me, "--worker", "distributed", *flags], two_devices_env
        ),
        f"two processes ({engines[1]}, 127.0.0.1)": _run(
            [sys.executable, "-m", "vae.launch", "-n", "2", me, "--worker", "distributed", *flags],
            env,
        ),
    }
    print(
        f"\nMLP VAE (784-512-2), global batch {args.batch_size}, {args.digits} digits, "
        f"{args.epochs} epochs (the first not timed), {args.backend}, {os.cpu_count()} CPU cores"
    )
    print("| run | devices | ms per step (median) | against one device |")
    print("|---|---|---|---|")
    base = runs["one process, one device"]["step_ms"]
    for name, run in runs.items():
        print(
            f"| {name} | {len(run['devices'])} | {run['step_ms']:.2f} | "
            f"{run['step_ms'] - base:+.2f} ms ({run['step_ms'] / base:.2f}x) |"
        )


if __name__ == "__main__":
    main()
