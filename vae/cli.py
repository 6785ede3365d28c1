"""The example scripts' flags and their train-or-load-then-plot flow.

An example parses its flags with `parse_args` before Keras is imported (so
environment settings take effect), builds its models, and hands them to
`train_or_load_then_plot`.
"""

import argparse
import os
import sys

import numpy as np


def _positive(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def parse_args(name, description, epochs, optimizer, argv=None):
    """Parses the flags shared by the example scripts.

    Args:
        name: the example's name, e.g. `"vae_mlp"`: its weights default to
            `<name>_mnist.h5` and its pictures go to `<out>/<name>/`.
        description: the `--help` text (the example's docstring).
        epochs: default number of epochs.
        optimizer: the Keras optimizer the example trains with.
        argv: the arguments, `sys.argv[1:]` by default.

    Returns:
        The parsed `argparse.Namespace`, with `name`, `optimizer` and `loss`
        (`"mse"` or `"bce"`) added.
    """
    parser = argparse.ArgumentParser(
        prog=f"{name}.py",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-m", "--mse", action="store_true",
                        help="reconstruction loss: mean squared error instead of binary cross-entropy")
    parser.add_argument("-w", "--weights", metavar="FILE",
                        help="load weights from FILE (Keras 3 or original Keras 2 .h5) and skip training")
    parser.add_argument("--epochs", type=_positive(0), default=epochs,
                        help=f"training epochs (default {epochs})")
    parser.add_argument("--batch-size", type=_positive(1), default=128,
                        help="batch size (default 128)")
    parser.add_argument("--latent-dim", type=_positive(1), default=2,
                        help="dimension of z (default 2; plots show the first two)")
    parser.add_argument("--data", metavar="PATH",
                        help="mnist.npz or a folder of MNIST IDX files (default: $VAE_DATA, "
                             "else the Keras download, else the bundled sample)")
    parser.add_argument("--train-samples", type=_positive(1), metavar="M",
                        help="train on a random subset of M digits")
    parser.add_argument("--test-samples", type=_positive(1), metavar="K",
                        help="evaluate and plot on a random subset of K digits")
    parser.add_argument("--seed", type=int,
                        help="seed for weights, shuffling and sampling: equal seeds, equal runs")
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="folder for weights, diagrams and plots (default: current folder)")
    parser.add_argument("--show", action="store_true",
                        help="also open the plots in windows")
    args = parser.parse_args(argv)
    args.name = name
    args.optimizer = optimizer
    args.loss = "mse" if args.mse else "bce"
    # TensorFlow's C++ start-up chatter buries the model summaries.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.seed is not None:
        import keras

        keras.utils.set_random_seed(args.seed)
    return args


def _subset(x, y, size, seed):
    if size is None or size >= len(x):
        return x, y
    # Seeded even without --seed, so runs without it compare on the same digits.
    chosen = np.random.default_rng(0 if seed is None else seed).choice(len(x), size, replace=False)
    return x[chosen], y[chosen]


def train_or_load_then_plot(args, models):
    """Loads data, trains (or loads `--weights`), saves, draws and evaluates.

    Args:
        args: flags from `parse_args`.
        models: `(encoder, decoder, vae)` from a builder.

    Returns:
        The test-set metrics, a dict with `loss`, `reconstruction_loss`, `kl_loss`.
    """
    from vae.data import DataError, load_mnist
    from vae.plotting import plot_architecture, plot_results
    from vae.weights import WeightsError, load_weights, save_weights

    encoder, decoder, vae = models
    try:
        os.makedirs(args.out, exist_ok=True)
        flatten = len(encoder.input.shape) == 2
        (x_train, y_train), (x_test, y_test) = load_mnist(args.data, flatten=flatten)
        x_train, y_train = _subset(x_train, y_train, args.train_samples, args.seed)
        x_test, y_test = _subset(x_test, y_test, args.test_samples, args.seed)

        encoder.summary()
        decoder.summary()
        vae.summary()
        plot_architecture(encoder, decoder, os.path.join(args.out, args.name))

        vae.compile(optimizer=args.optimizer)
        if args.weights:
            load_weights(vae, args.weights)
            print(f"loaded weights from {args.weights}; training skipped")
        else:
            vae.fit(
                x_train, epochs=args.epochs, batch_size=args.batch_size,
                validation_data=(x_test, None),
            )
            weights_file = os.path.join(args.out, f"{args.name}_mnist.h5")
            save_weights(vae, weights_file)
            print(f"saved weights to {weights_file}")

        plot_results(
            (encoder, decoder), (x_test, y_test), batch_size=args.batch_size,
            model_name=os.path.join(args.out, args.name), show=args.show,
        )
        metrics = vae.evaluate(x_test, batch_size=args.batch_size, verbose=0, return_dict=True)
    except (DataError, WeightsError) as error:
        sys.exit(f"{args.name}.py: error: {error}")
    print(
        f"test loss: {metrics['loss']:.2f} nats per digit "
        f"(reconstruction {metrics['reconstruction_loss']:.2f} + KL {metrics['kl_loss']:.2f}) "
        f"on {len(x_test)} digits"
    )
    return metrics
