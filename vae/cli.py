"""The example scripts' flags and their train-or-load-then-plot flow.

An example parses its flags with `parse_args` before Keras is imported (so
environment settings take effect), builds its models, and hands them to
`train_or_load_then_plot`. `examples/evaluate.py` does the same with
`parse_evaluation_args` and `load_then_evaluate`.
"""

import argparse
import json
import os
import sys
import tempfile
import warnings

import numpy as np

from vae.allocator import restart_with_huge_pages


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


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


EXIT_STATUSES = """exit status: 0 done; 1 failed (a data or weights file that cannot be used,
a NaN loss); 2 usage error (a bad flag value, a path that is missing or cannot
be written); 130 interrupted (Ctrl-C; the weights reached so far are saved)"""

# The file in which Keras's BackupAndRestore (and vae.safeguards.TrainingBackup)
# records the epochs a backup holds; read here without importing Keras.
BACKUP_METADATA = "training_metadata.json"

# vae.precision.POLICIES, named here without importing Keras.
MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, not the whole usage."""

    def error(self, message):
        # argparse's own messages name the flag but not the fix.
        self.fail(f"{message} (see --help)")

    def fail(self, message):
        """Ends with `message` (which says what to do) and exit status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _writable_folder(parser, flag, folder):
    # Checked now, not when the weights are saved after an hour of training.
    if os.path.exists(folder) and not os.path.isdir(folder):
        parser.fail(f"{flag} {folder}: is a file, not a folder; choose a folder to write to")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        parser.fail(f"{flag} {folder}: cannot write there ({error.strerror or error}); "
                     "choose a folder you can write to")


def _backup_epochs(folder):
    """The epochs of the training backup in `folder`, or `None` if it holds none."""
    try:
        with open(os.path.join(folder, BACKUP_METADATA)) as f:
            return int(json.load(f)["epoch"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return 0  # a backup all the same; resuming will say what is wrong with it


def _check_paths(parser, args):
    """Checks every path among the flags before Keras starts: a mistake costs a second.

    A path that is missing or cannot be written is a usage error (status 2);
    a file there whose content is unusable (data of the wrong shape, a PNG
    given as weights) fails the run (status 1), as it would later.
    """
    from vae.data import DataError, load_raw_mnist  # numpy and h5py only, no Keras
    from vae.weights import WeightsError, weights_layout

    def unusable(error):
        if args.debug:
            raise error
        parser.exit(1, f"{parser.prog}: error: {error}\n")

    if args.weights:
        if args.checkpoint_dir or args.resume:
            parser.fail("-w loads weights and skips training, --checkpoint-dir and --resume "
                        "are for training: give one or the other")
        if args.logdir:
            parser.fail("-w loads weights and skips training, --logdir logs training: give "
                        "one or the other")
        if not os.path.isfile(args.weights):
            what = "is a folder" if os.path.isdir(args.weights) else "no such file"
            parser.fail(f"weights: {args.weights}: {what}; pass the weights file to -w")
        try:
            weights_layout(args.weights)
        except WeightsError as error:
            unusable(error)
    if args.data is not None:
        if not os.path.exists(os.path.expanduser(args.data)):
            parser.fail(f"data: {args.data}: no such file or folder; pass --data PATH to a "
                        "Keras mnist.npz or a folder of IDX files")
        try:
            # Read twice (now and for training), but a second spent now saves
            # TensorFlow's start-up on a file that was never going to work.
            load_raw_mnist(args.data)
        except DataError as error:
            unusable(error)
    _writable_folder(parser, "--out", args.out)
    if args.logdir:
        _writable_folder(parser, "--logdir", args.logdir)
        # tf.summary writes the logs whatever the Keras backend, but its scalars and
        # images are implemented in the tensorboard package, which TensorFlow no
        # longer installs: say so now, not after the first epoch.
        import importlib.util

        missing = [name for name in ("tensorflow", "tensorboard")
                   if importlib.util.find_spec(name) is None]
        if missing:
            parser.fail(f"--logdir: writing TensorBoard logs needs {' and '.join(missing)}, "
                        f"not installed; pip install {' '.join(missing)}, or leave out --logdir")
    if args.resume and not args.checkpoint_dir:
        parser.fail("--resume needs --checkpoint-dir DIR, the folder the interrupted run "
                    "backed up to")
    if args.checkpoint_dir:
        _writable_folder(parser, "--checkpoint-dir", args.checkpoint_dir)
        backup = os.path.join(args.checkpoint_dir, args.name)
        epochs_done = _backup_epochs(backup)
        if args.resume and epochs_done is None:
            parser.fail(f"--resume: no backup of {args.name} in {args.checkpoint_dir} (the run "
                        "finished, or stopped before its first epoch ended); run without "
                        "--resume to start afresh")
        if not args.resume and epochs_done is not None:
            parser.fail(f"--checkpoint-dir: {backup} holds the backup of an unfinished run "
                        f"({epochs_done} epochs done); add --resume to continue it, or delete "
                        "that folder to start afresh")


# Keras backends the scripts offer, and how to install each one's package.
BACKENDS = {
    "tensorflow": "pip install tensorflow",
    "jax": 'pip install "vae[jax]"',
    "torch": 'pip install "vae[torch]"',
}


def add_backend_flag(parser):
    """Adds `--backend {jax,tensorflow,torch}`; pass its value to `choose_backend`."""
    parser.add_argument("--backend", choices=sorted(BACKENDS),
                        help="the Keras backend to run on (default: $KERAS_BACKEND, else "
                             "Keras's configured one, normally tensorflow); weights files "
                             "are the same on every backend")


def choose_backend(parser, backend, command_line=False):
    """Sets KERAS_BACKEND to `backend` before Keras is imported, or ends with status 2.

    Keras reads the variable once, when it is first imported: a backend asked
    for after that, or one whose package is missing, cannot be honoured. On
    JAX, a script's own command line (`command_line`) restarts once with
    glibc's huge pages (`vae.allocator`).
    """
    if backend is not None:
        keras = sys.modules.get("keras")
        if keras is not None and keras.backend.backend() != backend:
            parser.exit(2, f"{parser.prog}: error: --backend {backend}: Keras was already "
                           f"imported with the {keras.backend.backend()} backend in this "
                           f"process; set KERAS_BACKEND={backend} before anything imports "
                           "Keras, or run the script in a fresh process\n")
        import importlib.util

        if importlib.util.find_spec(backend) is None:
            parser.exit(2, f"{parser.prog}: error: --backend {backend}: the {backend} package "
                           f"is not installed; {BACKENDS[backend]}, or choose another backend\n")
        os.environ["KERAS_BACKEND"] = backend
    if command_line and os.environ.get("KERAS_BACKEND") == "jax":
        restart_with_huge_pages()


def print_warnings_in_one_line(prog):
    """Prints each warning as one line, `prog: warning: message`, like argparse's errors.

    Python's default adds the file and line and echoes the source line that
    warned, which tells a user of the script nothing. For a script's own
    process only: a notebook keeps Python's format.
    """

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show


def _set_up_process(parser, backend, argv):
    """Before Keras starts: the backend; and for a script's own command line (`argv`
    None), one-line warnings and, on JAX, the restart with huge pages."""
    choose_backend(parser, backend, command_line=argv is None)
    if argv is None:
        print_warnings_in_one_line(parser.prog)


def parse_args(name, description, epochs, optimizer, argv=None, defaults=None, extra=None):
    """Parses the flags shared by the example scripts.

    Args:
        name: the example's name, e.g. `"vae_mlp"`: its weights default to
            `<name>_mnist.h5` and its pictures go to `<out>/<name>/`.
        description: the `--help` text (the example's docstring).
        epochs: default number of epochs.
        optimizer: the Keras optimizer the example trains with.
        argv: the arguments, `sys.argv[1:]` by default.
        defaults: other defaults for the shared flags, e.g.
            `{"batch_size": 100, "latent_dim": 50}`.
        extra: a function that adds the example's own flags to the parser.

    Returns:
        The parsed `argparse.Namespace`, with `name`, `optimizer` and `loss`
        (`"mse"` or `"bce"`) added.

    The paths among the flags (`-w`, `--data`, `--out`, `--checkpoint-dir`,
    `--logdir`) are checked here, before Keras is imported: a bad flag value, or a path
    that is missing or cannot be written, ends the script with one line on
    stderr and exit status 2; a weights or data file that cannot be used,
    with status 1.
    """
    parser = _Parser(
        prog=f"{name}.py",
        description=description,
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # An example's own flag (`extra`) may replace a shared one, e.g. --learning-rate.
        conflict_handler="resolve",
    )
    parser.add_argument("-m", "--mse", action="store_true",
                        help="reconstruction loss: mean squared error instead of binary cross-entropy")
    parser.add_argument("-w", "--weights", metavar="FILE",
                        help="load weights from FILE (Keras 3 or original Keras 2 .h5) and skip training")
    parser.add_argument("--epochs", type=_positive(0), default=epochs,
                        help=f"training epochs (default {epochs})")
    parser.add_argument("--batch-size", type=_positive(1), default=128,
                        help="batch size (default %(default)s)")
    parser.add_argument("--latent-dim", type=_positive(1), default=2,
                        help="dimension of z (default %(default)s; plots show the first two)")
    parser.add_argument("--data", metavar="PATH",
                        help="mnist.npz or a folder of MNIST IDX files (default: $VAE_DATA, "
                             "else the Keras download, else the bundled sample)")
    parser.add_argument("--train-samples", type=_positive(1), metavar="M",
                        help="train on a random subset of M digits")
    parser.add_argument("--test-samples", type=_positive(1), metavar="K",
                        help="evaluate and plot on a random subset of K digits")
    parser.add_argument("--seed", type=int,
                        help="seed for weights, shuffling and sampling: equal seeds, equal runs")
    add_backend_flag(parser)
    parser.add_argument("--out", metavar="DIR", default=".",
                        help="folder for weights, diagrams and plots (default: current folder)")
    parser.add_argument("--show", action="store_true",
                        help="also open the plots in windows")
    parser.add_argument("--loss", choices=["bce", "mse"],
                        help="reconstruction loss: binary cross-entropy (default) or mean squared "
                             "error (the same as --mse)")
    parser.add_argument("--learning-rate", type=_positive_float, metavar="RATE",
                        help="the optimizer's learning rate (default: Keras's default for it)")
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="back up the training state to DIR/<name>/ at the end of every "
                             "epoch; removed once the weights are saved")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run backed up in --checkpoint-dir from "
                             "its last completed epoch (use the flags it had)")
    parser.add_argument("--distribute", action="store_true",
                        help="train data-parallel on every local device (the GPUs, else the "
                             "CPU devices): tf.distribute.MirroredStrategy on tensorflow, "
                             "keras.distribution.DataParallel on jax; --batch-size stays the "
                             "batch of a step, split evenly across the devices")
    parser.add_argument("--mixed-precision", nargs="?", const="auto", metavar="POLICY",
                        choices=["auto", *MIXED_PRECISION_POLICIES],
                        help="compute in 16 bits with float32 weights, loss and sampling: "
                             "mixed_float16 or mixed_bfloat16; without POLICY (auto), "
                             "mixed_float16 on a GPU, else mixed_bfloat16")
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks instead of one-line error messages")
    parser.add_argument("--samples", type=_positive(1), metavar="N",
                        help="also generate N digits from the prior N(0, I) into "
                             "<out>/<name>/samples.png (50 make a 5x10 grid)")
    parser.add_argument("--binarize", choices=["none", "static", "dynamic"], default="none",
                        help="binary digits: 'static' thresholds at 0.5 once, 'dynamic' draws "
                             "every pixel afresh each epoch (test digits: one fixed draw); "
                             "default %(default)s")
    parser.add_argument("--logdir", metavar="DIR",
                        help="write TensorBoard logs to DIR/<name>/: the losses of every epoch "
                             "and the digits generated from 16 fixed z (view them with "
                             "tensorboard --logdir DIR)")
    if extra is not None:
        extra(parser)
    if defaults:
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    # First: checking the paths below, or --seed, may import Keras.
    _set_up_process(parser, args.backend, argv)
    args.name = name
    args.optimizer = optimizer
    if args.mse and args.loss == "bce":
        parser.fail("--mse and --loss bce contradict each other: give one")
    args.loss = "mse" if args.mse else (args.loss or "bce")
    args.mse = args.loss == "mse"
    _check_paths(parser, args)
    # TensorFlow's C++ start-up chatter buries the model summaries.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.seed is not None:
        import keras

        keras.utils.set_random_seed(args.seed)
    # Now, before the example builds its model: both decide how its weights are made.
    _use_devices(parser, args)
    return args


def _use_devices(parser, args):
    """Sets up --distribute and --mixed-precision; `args.devices` lists the devices, or is None."""
    args.devices = None
    if args.distribute:
        from vae.distribute import data_parallel

        try:
            devices = data_parallel()
        except ValueError as error:  # a backend without a data-parallel engine
            parser.fail(f"--distribute: {error}, e.g. --backend jax")
        if args.batch_size % len(devices):
            parser.fail(f"--batch-size {args.batch_size} does not split evenly over "
                        f"{len(devices)} devices; pass a multiple of {len(devices)}")
        args.devices = devices
        if len(devices) == 1:
            print(f"--distribute: {devices[0]} is the only device, so training runs as without "
                  "--distribute")
        else:
            print(f"data-parallel training on {len(devices)} devices ({', '.join(devices)}): "
                  f"each step splits the batch of {args.batch_size} into "
                  f"{args.batch_size // len(devices)} per device")
    if args.mixed_precision:
        from vae.precision import mixed_precision

        policy = mixed_precision(None if args.mixed_precision == "auto" else args.mixed_precision)
        print(f"mixed precision ({policy}): layers compute in {policy.removeprefix('mixed_')}; "
              "weights, loss and sampling in float32")


def _subset(x, y, size, seed):
    if size is None or size >= len(x):
        return x, y
    # Seeded even without --seed, so runs without it compare on the same digits.
    chosen = np.random.default_rng(0 if seed is None else seed).choice(len(x), size, replace=False)
    return x[chosen], y[chosen]


def _split_evenly(args, x, y, which):
    """Leaves out the last few digits of a set whose last batch would not split over the devices."""
    extra = len(x) % len(args.devices) if args.devices else 0
    if extra:
        print(f"--distribute: left out the last {extra} of the {len(x)} {which} digits, so "
              f"that every batch splits evenly over the {len(args.devices)} devices")
    return x[:len(x) - extra], y[:len(y) - extra]


def _binarized(args, x_train, x_test):
    """Training data and test digits as --binarize asks: grey levels, thresholded or drawn."""
    from vae.data import DynamicBinarization, binarize

    if args.binarize == "static":
        return binarize(x_train), binarize(x_test)
    if args.binarize == "dynamic":
        # A fixed draw of the test digits, so every run scores the same ones.
        return (DynamicBinarization(x_train, args.batch_size, seed=args.seed),
                binarize(x_test, "dynamic"))
    return x_train, x_test


def _fail(args, error, message=None, status=1):
    """Ends the script with one line on stderr and `status`; under --debug, the traceback.

    Interruptions (status 130) are no error: they never show a traceback.
    """
    if getattr(args, "debug", False) and status != 130:
        raise error
    print(f"{args.name}.py: {message or f'error: {error}'}", file=sys.stderr)
    sys.exit(status)


def _optimizer(args):
    """The example's optimizer, with --learning-rate if given."""
    rate = getattr(args, "learning_rate", None)
    if rate is None or not isinstance(args.optimizer, str):
        return args.optimizer  # an example that builds its own optimizer sets its own rate
    import keras

    optimizer = keras.optimizers.get(args.optimizer)
    optimizer.learning_rate = rate
    return optimizer


def _train_and_save(args, vae, train_data, x_test, callbacks):
    """Fits `vae` under the safeguards, then saves its weights to `<out>/<name>_mnist.h5`.

    A NaN or infinite loss ends the script with status 1 and leaves the
    weights file as it was; Ctrl-C saves the weights reached so far and ends
    it with status 130; `--checkpoint-dir` backs up every epoch, `--resume`
    continues from that backup.
    """
    from vae.safeguards import (
        NonFiniteLossError,
        StopOnInterrupt,
        StopOnNonFiniteLoss,
        TrainingBackup,
        TrainingInterrupted,
    )
    from vae.weights import WeightsError, describe_mismatch, save_weights

    weights_file = os.path.join(args.out, f"{args.name}_mnist.h5")
    # The NaN check first, so no other callback sees the ruined epoch.
    before = [StopOnNonFiniteLoss()]
    backup = None
    if args.checkpoint_dir:
        backup = TrainingBackup(os.path.join(args.checkpoint_dir, args.name))
        if args.resume:
            mismatch = describe_mismatch(vae, backup.weights_path)
            if mismatch:
                raise WeightsError(
                    f"--resume: the backup {backup.weights_path} does not fit this model: "
                    f"{mismatch}; resume with the flags of the interrupted run, or delete "
                    f"{backup.backup_dir} to start afresh")
            print(f"resuming from {backup.backup_dir}: {backup.completed_epochs()} of "
                  f"{args.epochs} epochs done")
        before.append(backup)
    # Last, so that the backup of an epoch completed is written before it stops.
    stop = StopOnInterrupt()
    try:
        vae.fit(
            train_data, epochs=args.epochs, batch_size=args.batch_size,
            validation_data=(x_test, None), callbacks=[*before, *callbacks, stop],
        )
    except NonFiniteLossError as error:
        kept = (f"; the backup in {backup.backup_dir} keeps epoch {backup.completed_epochs()}"
                if backup and backup.completed_epochs() else "")
        _fail(args, error, f"error: {error}, so {weights_file} was not written{kept}; "
                           "lower the learning rate (--learning-rate) or check the data")
    except TrainingInterrupted as where:
        save_weights(vae, weights_file)
        resume = ""
        if backup and backup.completed_epochs():
            resume = (f"; --resume continues from the end of epoch {backup.completed_epochs()} "
                      f"(backup in {backup.backup_dir})")
        _fail(args, where, f"{where}: saved the weights reached so far to {weights_file}"
                           f"{resume}", status=130)
    finally:
        stop.restore()
    save_weights(vae, weights_file)
    print(f"saved weights to {weights_file}")
    if backup:
        backup.remove()  # only now: until the weights were saved, it was the only copy
    if stop.interrupted:  # Ctrl-C after the last batch: the run is complete, stop here
        _fail(args, KeyboardInterrupt(), f"interrupted after the last epoch: saved the weights "
                                         f"to {weights_file}", status=130)


def _tensorboard(args):
    """The callbacks of --logdir: Keras's TensorBoard for the losses, and generated digits."""
    import keras

    from vae.callbacks import TensorBoardImages

    logdir = os.path.join(args.logdir, args.name)
    print(f"TensorBoard logs go to {logdir}; view them with: tensorboard --logdir {args.logdir}")
    return [keras.callbacks.TensorBoard(logdir), TensorBoardImages(logdir, seed=args.seed)]


def train_or_load_then_plot(args, models, callbacks=()):
    """Loads data, trains (or loads `--weights`), saves, draws and evaluates.

    Args:
        args: flags from `parse_args`.
        models: `(encoder, decoder, vae)` from a builder.
        callbacks: Keras callbacks for `fit`.

    Returns:
        The test-set metrics, a dict with `loss`, `reconstruction_loss`, `kl_loss`.
    """
    from vae.data import DataError, load_mnist
    from vae.plotting import (
        plot_architecture,
        plot_interpolation,
        plot_reconstructions,
        plot_results,
        plot_samples,
    )
    from vae.weights import WeightsError, load_weights, save_weights

    encoder, decoder, vae = models
    try:
        os.makedirs(args.out, exist_ok=True)
        flatten = len(encoder.input.shape) == 2
        (x_train, y_train), (x_test, y_test) = load_mnist(args.data, flatten=flatten)
        x_train, y_train = _subset(x_train, y_train, args.train_samples, args.seed)
        x_test, y_test = _subset(x_test, y_test, args.test_samples, args.seed)
        x_train, y_train = _split_evenly(args, x_train, y_train, "training")
        x_test, y_test = _split_evenly(args, x_test, y_test, "test")
        train_data, x_test = _binarized(args, x_train, x_test)

        import keras

        # The log says which engine ran: speed and the last digits differ between them.
        print(f"Keras {keras.__version__} on the {keras.backend.backend()} backend")
        encoder.summary()
        decoder.summary()
        vae.summary()
        plot_architecture(encoder, decoder, os.path.join(args.out, args.name))

        vae.compile(optimizer=_optimizer(args))
        if args.weights:
            load_weights(vae, args.weights)
            print(f"loaded weights from {args.weights}; training skipped")
        else:
            if args.logdir:
                callbacks = [*callbacks, *_tensorboard(args)]
            _train_and_save(args, vae, train_data, x_test, callbacks)
        if args.devices:  # the pictures predict on batches of any size
            from vae.distribute import end_data_parallel

            end_data_parallel()

        # Decoders of logits (build_conv_vae) are drawn through a sigmoid.
        logits = getattr(vae, "reconstruction", None) == "bce_logits"
        pictures = os.path.join(args.out, args.name)
        plot_results(
            (encoder, decoder), (x_test, y_test), batch_size=args.batch_size,
            model_name=pictures, show=args.show, logits=logits,
        )
        plot_reconstructions(encoder, decoder, x_test,
                             os.path.join(pictures, "reconstructions.png"), logits=logits,
                             show=args.show)
        # From the first test digit to the first one of another class.
        other = max(int(np.argmax(y_test != y_test[0])), 1)
        plot_interpolation(encoder, decoder, x_test[0], x_test[other],
                           os.path.join(pictures, "interpolation.png"), logits=logits,
                           show=args.show)
        if args.samples:
            samples_file = os.path.join(args.out, args.name, "samples.png")
            plot_samples(decoder, args.samples, samples_file, seed=args.seed, logits=logits,
                         show=args.show)
            print(f"saved {args.samples} digits generated from the prior to {samples_file}")
        metrics = vae.evaluate(x_test, batch_size=args.batch_size, verbose=0, return_dict=True)
    except (DataError, WeightsError, OSError) as error:
        _fail(args, error)
    except KeyboardInterrupt as error:  # Ctrl-C outside training: nothing half done to save
        _fail(args, error, "interrupted", status=130)
    print(
        f"test loss: {metrics['loss']:.2f} nats per digit "
        f"(reconstruction {metrics['reconstruction_loss']:.2f} + KL {metrics['kl_loss']:.2f}) "
        f"on {len(x_test)} digits"
    )
    return metrics


def parse_evaluation_args(description, argv=None):
    """Parses the flags of `examples/evaluate.py`: the model, its weights, the digits, `k`.

    Args:
        description: the `--help` text (the example's docstring).
        argv: the arguments, `sys.argv[1:]` by default.

    Returns:
        The parsed `argparse.Namespace`, with `name` and `loss` added and
        `latent_dim` filled in with the model's default when not given.
    """
    parser = argparse.ArgumentParser(
        prog="evaluate.py", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-w", "--weights", metavar="FILE", required=True,
                        help="weights saved by vae_mlp.py, vae_cnn.py, cvae.py or save_weights")
    parser.add_argument("--model", choices=["mlp", "cnn", "conv"], required=True,
                        help="the architecture: vae_mlp.py's, vae_cnn.py's or cvae.py's")
    parser.add_argument("-m", "--mse", action="store_true",
                        help="the model was trained with --mse (a Gaussian decoder)")
    parser.add_argument("--latent-dim", type=_positive(1),
                        help="dimension of z it was trained with (default: 2 for mlp and cnn, "
                             "50 for conv)")
    parser.add_argument("--k", type=_positive(1), default=1000,
                        help="importance samples per digit (default %(default)s; the published "
                             "numbers use 5000)")
    parser.add_argument("--binarize", choices=["none", "static", "dynamic"], default="dynamic",
                        help="test digits: 'dynamic', one fixed Bernoulli draw (as the training "
                             "scripts' --binarize dynamic); 'static', thresholded at 0.5; "
                             "'none', grey levels (no likelihood for cross-entropy then); "
                             "default %(default)s")
    parser.add_argument("--data", metavar="PATH",
                        help="mnist.npz or a folder of MNIST IDX files (default: $VAE_DATA, "
                             "else the Keras download, else the bundled sample)")
    parser.add_argument("--test-samples", type=_positive(1), metavar="K",
                        help="evaluate a random subset of K test digits (as the training scripts)")
    parser.add_argument("--batch-size", type=_positive(1), default=1000,
                        help="decoder passes per step; bounds memory (default %(default)s)")
    parser.add_argument("--seed", type=int, help="seed of the importance samples")
    add_backend_flag(parser)
    args = parser.parse_args(argv)
    _set_up_process(parser, args.backend, argv)
    args.name = "evaluate"
    conv = args.model == "conv"
    args.loss = "mse" if args.mse else ("bce_logits" if conv else "bce")
    if args.latent_dim is None:
        args.latent_dim = 50 if conv else 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return args


_DIGITS = {
    "none": "grey levels",
    "static": "binarized at 0.5",
    "dynamic": "binarized by one fixed Bernoulli draw",
}


def load_then_evaluate(args, models):
    """Loads `--weights`, then prints the test ELBO and the importance-sampled NLL.

    Both in nats per digit, with the standard error over digits. The NLL is
    reported only where it is a likelihood: binary digits for cross-entropy
    models (any digits for a Gaussian decoder, where it is a density).

    Args:
        args: flags from `parse_evaluation_args`.
        models: `(encoder, decoder, vae)` from the builder the weights came from.

    Returns:
        A dict: `elbo` and `nll`, each `(mean, standard error)`; `nll` is
        `None` where not reported.
    """
    from vae.data import DataError, binarize, load_mnist
    from vae.evaluation import (
        elbo,
        importance_sampled_log_likelihood,
        is_binary,
        mean_and_standard_error,
    )
    from vae.weights import WeightsError, load_weights

    encoder, _, vae = models
    try:
        _, (x_test, y_test) = load_mnist(args.data, flatten=len(encoder.input.shape) == 2)
        x_test, _ = _subset(x_test, y_test, args.test_samples, args.seed)
        if args.binarize != "none":
            x_test = binarize(x_test, args.binarize)
        load_weights(vae, args.weights)
    except (DataError, WeightsError, OSError) as error:
        _fail(args, error)
    import keras

    print(f"{vae.name} ({vae.reconstruction} likelihood) from {args.weights}, "
          f"{len(x_test)} test digits, {_DIGITS[args.binarize]}; "
          f"{keras.backend.backend()} backend")
    gaussian = vae.reconstruction == "mse"
    nll = None
    if gaussian or is_binary(x_test):
        log_px, elbos = importance_sampled_log_likelihood(
            vae, x_test, k=args.k, batch_size=args.batch_size, seed=args.seed,
            return_elbo=True,
        )
        nll = mean_and_standard_error(-log_px)
    else:
        with warnings.catch_warnings():  # the note below says it, in full
            warnings.simplefilter("ignore", UserWarning)
            elbos = elbo(vae, x_test, batch_size=args.batch_size, seed=args.seed)
    result = {"elbo": mean_and_standard_error(elbos), "nll": nll}
    print(f"test ELBO: {result['elbo'][0]:.2f} +- {result['elbo'][1]:.2f} nats per digit "
          "(+- one standard error over digits)")
    if nll is not None:
        print(f"NLL (importance sampled, k={args.k}): {nll[0]:.2f} +- {nll[1]:.2f} nats per digit")
    if gaussian:
        print("note: a Gaussian decoder (variance 1/2 per pixel) gives a density, not a "
              "probability: these numbers compare with no binarized-MNIST result")
    elif nll is None:
        print("note: binary cross-entropy on grey levels is not a proper likelihood, so the "
              "ELBO above bounds no log-probability and no NLL is reported; pass "
              "--binarize dynamic (or static) for likelihood numbers")
    return result
