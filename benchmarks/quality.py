"""Quality benchmark: the TensorFlow tutorial's convolutional VAE on dynamically binarized MNIST.

Trains `build_conv_vae` (latent 50, Adam 1e-4, batch 100; the tutorial's
settings) on training digits binarized afresh every epoch, then prints the
test-set ELBO and the negative log-likelihood estimated by importance
sampling with k = 5000 draws per digit, beside the published numbers for a
VAE on the same data. The test digits are one fixed Bernoulli draw (seed 0).
Numbers are nats per digit with one standard error over digits.

    python benchmarks/quality.py --data ../shared/data/mnist           # the full run
    python benchmarks/quality.py --data ../shared/data/mnist --backend jax   # on JAX
    python benchmarks/quality.py --data ../shared/data/mnist --epochs 1 \\
        --train-samples 2000 --test-samples 200 --k 100               # a smoke test
    python benchmarks/quality.py -w quality/cvae.weights.h5 --k 5000   # evaluate only

The weights are saved to <out>/cvae.weights.h5 after training, so the
evaluation can be rerun (or run with another k) without training again.
"""

import argparse
import os
import sys
import time
from pathlib import Path

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae import cli  # argparse and numpy only: Keras is not imported yet

# (model, reference, NLL in nats) on dynamically binarized MNIST.
PUBLISHED = [
    ("VAE", "Rezende & Mohamed 2015", 89.9),
    ("VAE", "pythae's reproduction", 89.78),
    ("VAE", "Burda et al. 2015", 86.76),
    ("IWAE, k=50", "Burda et al. 2015", 84.78),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", metavar="PATH",
                        help="mnist.npz or a folder of MNIST IDX files (default: as load_mnist)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
    parser.add_argument("--batch-size", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--learning-rate", type=float, default=1e-4,
                        help="Adam's learning rate (default 1e-4)")
    parser.add_argument("--latent-dim", type=int, default=50, help="dimension of z (default 50)")
    parser.add_argument("--kl", choices=["analytic", "monte_carlo"], default="analytic",
                        help="KL term of the training loss (default analytic)")
    parser.add_argument("--k", type=int, default=5000,
                        help="importance samples per digit (default 5000, as published)")
    parser.add_argument("--train-samples", type=int, metavar="M",
                        help="train on the first M training digits (default all 60,000)")
    parser.add_argument("--test-samples", type=int, metavar="K",
                        help="evaluate on the first K test digits (default all 10,000)")
    parser.add_argument("--nll-samples", type=int, metavar="N",
                        help="estimate the NLL on the first N of those only (it costs k decoder "
                             "passes per digit); default all")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and draws (default 0)")
    parser.add_argument("-w", "--weights", metavar="FILE",
                        help="evaluate these weights instead of training")
    parser.add_argument("--out", default="quality", help="folder for the weights (default quality)")
    cli.add_backend_flag(parser)
    args = parser.parse_args(argv)
    cli.choose_backend(parser, args.backend)
    return args


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    from vae.callbacks import EpochSummary
    from vae.data import DynamicBinarization, binarize, load_mnist
    from vae.evaluation import elbo, importance_sampled_log_likelihood, mean_and_standard_error
    from vae.models import build_conv_vae
    from vae.weights import load_weights, save_weights

    keras.utils.set_random_seed(args.seed)
    (x_train, _), (x_test, _) = load_mnist(args.data)
    x_train, x_test = x_train[: args.train_samples], x_test[: args.test_samples]
    x_test = binarize(x_test, "dynamic")
    _, _, vae = build_conv_vae(latent_dim=args.latent_dim, kl=args.kl, seed=args.seed)
    vae.compile(optimizer=keras.optimizers.Adam(args.learning_rate))

    seconds_per_epoch = None
    if args.weights:
        load_weights(vae, args.weights)
        training = f"weights {os.path.basename(args.weights)}"
        print(f"loaded {args.weights}; training skipped")
    else:
        train = DynamicBinarization(x_train, args.batch_size, seed=args.seed)
        started = time.perf_counter()
        vae.fit(train, epochs=args.epochs, validation_data=(x_test, None),
                batch_size=args.batch_size, callbacks=[EpochSummary()], verbose=2)
        seconds_per_epoch = (time.perf_counter() - started) / max(args.epochs, 1)
        training = f"{args.epochs} epoch{'' if args.epochs == 1 else 's'} on {len(x_train)} digits"
        os.makedirs(args.out, exist_ok=True)
        weights_file = os.path.join(args.out, "cvae.weights.h5")
        save_weights(vae, weights_file)
        print(f"saved {weights_file}")

    started = time.perf_counter()
    elbo_mean, elbo_error = mean_and_standard_error(elbo(vae, x_test, seed=args.seed))
    x_nll = x_test[: args.nll_samples]
    print(f"importance sampling: {len(x_nll)} digits x k = {args.k} decoder passes")
    log_px = importance_sampled_log_likelihood(vae, x_nll, k=args.k, seed=args.seed)
    nll, nll_error = mean_and_standard_error(-log_px)
    evaluation_seconds = time.perf_counter() - started

    this = f"conv VAE, latent {args.latent_dim} (this run)"
    rows = [(this, training,
             f"{-elbo_mean:.2f} +- {elbo_error:.2f}",
             f"{nll:.2f} +- {nll_error:.2f} (k={args.k}, {len(x_nll)} digits)")]
    rows += [(model, reference, "", f"{value:.2f}") for model, reference, value in PUBLISHED]
    header = ("model", "training / reference", "-ELBO (nats)", "NLL (nats)")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(4)]
    print()
    print("dynamically binarized MNIST, test set: " + f"{len(x_test)} digits")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
    print()
    if seconds_per_epoch is not None:
        print(f"training: {seconds_per_epoch:.1f} s per epoch on the "
              f"{keras.backend.backend()} backend")
    print(f"evaluation: {evaluation_seconds:.0f} s")


if __name__ == "__main__":
    main()
