"""Burda's MLP epoch at each batch size, and what dynamic binarization costs in it.

Burda et al.'s MLP (784-200-200-50, tanh, `BURDA_MLP`) trains on all 60,000
MNIST digits at each `--batch-sizes`, two ways each, in one process, all
taking turns epoch by epoch so that the machine's drift between minutes
falls on every one:

- **host:** `DynamicBinarization`, the `PyDataset` that the scripts and
  `quality.py` train on, drawing every pixel of each batch afresh in NumPy;
- **none:** the grey digits as one array, not binarized: the same step
  with no draws at all, the floor that no binarization (on the host or in
  the compiled step) can beat.

Each model trains `--epochs` epochs (the first compiles, and is left out);
the table gives the median epoch of each. `host / none` is the largest
speed-up that moving the draws anywhere could give; the batch sizes' epochs
compare `quality.py`'s schedules (Burda's batch 20, the fast run's 128).

    python benchmarks/binarization.py --data ../shared/data/mnist
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae import cli  # argparse only: Keras is not imported yet


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="MNIST's IDX files (default: as load_mnist)")
    parser.add_argument("--batch-sizes", type=cli.positive(1), nargs="+", default=[20, 128])
    parser.add_argument("--epochs", type=cli.positive(2), default=6)
    parser.add_argument("--backend", choices=sorted(cli.BACKENDS), default="jax")
    args = parser.parse_args()
    cli.choose_backend(parser, args.backend, command_line=True)
    return args


def main():
    args = parse_args()
    import keras

    from vae import build_mlp_vae, load_mnist
    from vae.data import DynamicBinarization
    from vae.models import BURDA_MLP

    (x_train, _), _ = load_mnist(args.data, flatten=True)
    feeds = {}
    for batch in args.batch_sizes:
        feeds[batch, "host"] = dict(x=DynamicBinarization(x_train, batch, seed=1))
        feeds[batch, "none"] = dict(x=x_train, batch_size=batch)
    models = {}
    for run in feeds:
        _, _, models[run] = build_mlp_vae(**BURDA_MLP, seed=1)
        models[run].compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-4))
    seconds = {run: [] for run in feeds}
    for epoch in range(args.epochs):
        for run, feed in feeds.items():
            started = time.perf_counter()
            models[run].fit(**feed, initial_epoch=epoch, epochs=epoch + 1, verbose=0)
            seconds[run].append(time.perf_counter() - started)
    median = {run: statistics.median(times[1:]) for run, times in seconds.items()}
    print(
        f"\nBurda's MLP, {len(x_train):,} digits, {keras.backend.backend()}, "
        f"median of {args.epochs - 1} epochs after the first"
    )
    print("| batch | binarization | seconds per epoch | each epoch after the first | host / none |")
    print("|---|---|---|---|---|")
    for (batch, way), times in seconds.items():
        ratio = f"{median[batch, 'host'] / median[batch, 'none']:.2f}" if way == "host" else ""
        every = ", ".join(f"{t:.2f}" for t in times[1:])
        print(f"| {batch} | {way} | {median[batch, way]:.3f} | {every} | {ratio} |")


if __name__ == "__main__":
    main()
