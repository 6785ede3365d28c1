"""The cost of training in several processes: one process against two, per step, on TensorFlow.

The same MLP VAE, the same global batch and the same digits, trained three
ways, one after the other: one process on one device; one process on the
CPU split into two devices (`MirroredStrategy`, an all-reduce in memory);
two processes of one device each, started by `python -m vae.launch`
(`MultiWorkerMirroredStrategy`, an all-reduce over gRPC on 127.0.0.1). Each
prints the median time of a training step after the first epoch (the
compiled step, without the epoch's start and end), and the table gives what
the all-reduce adds. On a 2-core machine the two processes share its cores,
so no speed-up is expected: the point is the price of the second process.

    python benchmarks/multiprocess.py --data ../shared/data/mnist
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
    parser.add_argument("--worker", choices=["plain", "distributed"], help=argparse.SUPPRESS)
    return parser.parse_args()


def worker(args):
    """Trains and prints `{"step_ms": ..., "workers": ..., "devices": ...}` (the chief only)."""
    import time

    import keras
    import numpy as np

    from vae import build_mlp_vae, load_mnist
    from vae.distribute import data_parallel, is_chief, join_processes

    devices = ["one"]
    if args.worker == "distributed":
        join_processes()
        devices = data_parallel()
    keras.utils.set_random_seed(1)
    (x_train, _), _ = load_mnist(args.data, flatten=True)
    x_train = x_train[: args.digits]
    _, _, vae = build_mlp_vae(seed=1)
    vae.compile(optimizer="adam", jit_compile=False)

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.epoch = [], 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch > 0:
                self.times.append(time.perf_counter() - self.started)

    steps = StepTimes()
    vae.fit(x_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0, callbacks=[steps])
    if is_chief():
        print(json.dumps({"step_ms": 1000 * float(np.median(steps.times)), "devices": devices}))


def _run(command, env=None):
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            **(env or {}),
        },
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
    ]
    if args.data:
        flags += ["--data", args.data]
    env = {"PYTHONPATH": str(ROOT)}
    me = str(Path(__file__).resolve())
    runs = {
        "one process, one device": _run([sys.executable, me, "--worker", "plain", *flags], env),
        "one process, two devices (MirroredStrategy)": _run(
            [
                sys.executable,
                "-c",
                SPLIT_CPU + "import runpy, sys\nsys.argv = sys.argv[1:]\n"
                "runpy.run_path(sys.argv[0], run_name='__main__')",
                me,
                "--worker",
                "distributed",
                *flags,
            ],
            env,
        ),
        "two processes (MultiWorkerMirroredStrategy, 127.0.0.1)": _run(
            [sys.executable, "-m", "vae.launch", "-n", "2", me, "--worker", "distributed", *flags],
            env,
        ),
    }
    print(
        f"\nMLP VAE (784-512-2), global batch {args.batch_size}, {args.digits} digits, "
        f"{args.epochs} epochs (the first not timed), TensorFlow, {os.cpu_count()} CPU cores"
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
