"""Scoring speed: the importance-sampled NLL scan against an earlier version of it, side by side.

The earlier `vae/evaluation.py` is read from git (`--before`, a commit) into
a module of its own, so both scans run in this one process on the same
weights, digits and draws count, taking turns round by round. For each it
prints decoder passes per second, their GFLOP/s (the decoder's forward
multiply-adds, counted from its layers) and the share of the machine's
matrix-multiply speed (NumPy's float32, measured at the start), and the
ratio of the two. Then the likelihood regret's cost per image.

    python benchmarks/scoring.py --data ../shared/data/mnist
    python benchmarks/scoring.py --data ../shared/data/mnist --models conv --digits 40
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from vae import cli  # argparse only: Keras is not imported yet

MODELS = {
    "burda": ("burda_vae_k1.weights.h5", "jax"),
    "conv": ("conv_vae.weights.h5", "tensorflow"),
}


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="MNIST's IDX files (default: as load_mnist)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument(
        "--before",
        default="04bb1bd",
        help="the commit whose vae/evaluation.py is the reference "
        "(default %(default)s, before the faster scan)",
    )
    parser.add_argument("--k", type=cli.positive(1), default=5000)
    parser.add_argument(
        "--digits",
        type=cli.positive(1),
        default=200,
        help="test digits per round (default %(default)s)",
    )
    parser.add_argument("--rounds", type=cli.positive(1), default=3)
    parser.add_argument("--regret-images", type=cli.positive(1), default=64)
    parser.add_argument(
        "--backend",
        choices=sorted(cli.BACKENDS),
        help="default: the model's fastest (JAX for Burda's MLP, TensorFlow for the conv VAE)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args()


def _earlier_evaluation(commit):
    source = subprocess.run(
        ["git", "show", f"{commit}:vae/evaluation.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "evaluation_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("evaluation_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(args, name):
    import keras
    import numpy as np
    from throughput import forward_macs, machine_peak_gflops

    from vae import evaluation, scores
    from vae.data import binarize, load_mnist
    from vae.weights import load_model

    weights_file, _ = MODELS[name]
    _, _, vae, _ = load_model(
        ROOT / "benchmarks" / "results" / weights_file, fallback=_fallback(name)
    )
    before = _earlier_evaluation(args.before)
    flat = len(vae.encoder.input.shape) == 2
    (_, _), (x_test, _) = load_mnist(args.data, flatten=flat)
    x = binarize(x_test[: args.digits], "dynamic")
    peak = machine_peak_gflops()
    flops = 2 * forward_macs(vae.decoder)
    scans = {
        "before": before.importance_sampled_log_likelihood,
        "now": evaluation.importance_sampled_log_likelihood,
    }
    for scan in scans.values():  # compile first
        scan(vae, x[:2], k=min(args.k, 2000), verbose=0)
    seconds = {label: [] for label in scans}
    values = {}
    for round_ in range(args.rounds):
        order = list(scans) if round_ % 2 == 0 else list(reversed(scans))
        for label in order:
            started = time.perf_counter()
            values[label] = scans[label](vae, x, k=args.k, verbose=0, seed=round_)
            seconds[label].append(time.perf_counter() - started)
    print(
        f"\n{name}: {keras.backend.backend()} backend, k = {args.k}, {args.digits} digits, "
        f"{flops / 1e6:.2f} MFLOP per decoder pass; NumPy's float32 products {peak:.0f} GFLOP/s"
    )
    print("| scan | s per round (median) | decoder passes/s | GFLOP/s | share of NumPy's | NLL |")
    print("|---|---|---|---|---|---|")
    medians = {label: float(np.median(s)) for label, s in seconds.items()}
    for label in scans:
        passes = args.digits * args.k / medians[label]
        print(
            f"| {label} | {medians[label]:.2f} | {passes:,.0f} | {passes * flops / 1e9:.0f} | "
            f"{passes * flops / 1e9 / peak:.0%} | {-values[label].mean():.2f} |"
        )
    print(f"speed-up: {medians['before'] / medians['now']:.2f}x")
    images = binarize(x_test[: args.regret_images], "dynamic")
    scores.likelihood_regret(vae, images[:2], k=1000, verbose=0)  # compile
    started = time.perf_counter()
    scores.likelihood_regret(vae, images, k=1000, verbose=0)
    per_image = (time.perf_counter() - started) / len(images)
    print(
        f"likelihood regret (100 steps, k = 1000): {per_image * 1000:.0f} ms per image, "
        f"{per_image * 10000 / 60:.0f} min for 10,000"
    )


def _fallback(name):
    from vae.scoring import _FALLBACK_BUILDERS

    builder, arguments = _FALLBACK_BUILDERS[name]
    return {"builder": builder, "arguments": arguments, "binarize": "dynamic"}


def main():
    args = parse_args()
    if args.worker:
        return worker(args, args.worker)
    for name in args.models:
        backend = args.backend or MODELS[name][1]
        command = [sys.executable, __file__, "--worker", name, *sys.argv[1:]]
        subprocess.run(
            command,
            check=True,
            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )


if __name__ == "__main__":
    main()
