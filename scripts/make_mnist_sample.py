"""Regenerates vae/mnist_sample.npz from the four original MNIST IDX files.

The sample is the first 10,000 training and the first 2,000 test digits,
uint8, in the Keras layout (x_train, y_train, x_test, y_test). It is read
with vae.data's own IDX reader, so its provenance can be checked by running
this again. The arrays are reproducible; the file's bytes are not quite
(zip entries carry a timestamp).

Usage:
    python scripts/make_mnist_sample.py IDX_FOLDER [OUT]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae.data import IDX_FILES, SAMPLE_PATH, read_idx  # noqa: E402

COUNTS = {"train": 10_000, "test": 2_000}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder with the four IDX files (.gz or raw)")
    parser.add_argument(
        "out",
        type=Path,
        nargs="?",
        default=SAMPLE_PATH,
        help=f"output .npz (default {SAMPLE_PATH})",
    )
    args = parser.parse_args()

    arrays = {}
    for key, name in IDX_FILES.items():
        raw, gz = args.folder / name, args.folder / (name + ".gz")
        path = raw if raw.is_file() else gz
        kind = "images" if key.startswith("x") else "labels"
        arrays[key] = read_idx(path, kind)[: COUNTS[key.split("_")[1]]]
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {a.shape}" for k, a in arrays.items()))


if __name__ == "__main__":
    main()
