"""The example scripts' flags, checked before Keras starts.

An example parses its flags with `parse_args` before Keras is imported (so
environment settings take effect), then trains with `vae.workflow`.
`examples/evaluate.py` does the same with `parse_evaluation_args` and
`vae.workflow.load_then_evaluate`.
"""

import argparse
import json
import math
import os
import re
import sys
import tempfile
import warnings

from vae.allocator import restart_with_huge_pages


def positive(minimum):
    """An argparse type: integers of at least `minimum` (for an example's own flags)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _non_negative_float(text):
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


def _fraction(text):
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def _perturbation(text):
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in [0, 1)")
    return value


def _positive_float(text):
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


EXIT_STATUSES = """exit status: 0 done; 1 failed (a data or weights file that cannot be used,
a NaN loss); 2 usage error (a bad flag value, a path that is missing or cannot
be written); 130 interrupted (Ctrl-C; the weights reached so far are saved)"""

# The file in which Keras's BackupAndRestore (and vae.safeguards.TrainingBackup)
# records the epochs a backup holds; read here without importing Keras.
BACKUP_METADATA = "training_metadata.json"

# vae.data.DATASETS, named here without importing NumPy.
DATASETS = ("mnist", "fashion_mnist")

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
        parser.fail(
            f"{flag} {folder}: cannot write there ({error.strerror or error}); "
            "choose a folder you can write to"
        )


def _backup_epochs(folder):
    """The epochs of the training backup in `folder`, or `None` if it holds none."""
    try:
        with open(os.path.join(folder, BACKUP_METADATA)) as f:
            return int(json.load(f)["epoch"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return 0  # a backup all the same; resuming will say what is wrong with it


def _check_paths(parser, args, stream_folders=False):
    """Checks every path among the flags before Keras starts: a mistake costs a second.

    A path that is missing or cannot be written is a usage error (status 2);
    a file there whose content is unusable (data of the wrong shape, a PNG
    given as weights) fails the run (status 1), as it would later.
    """
    # numpy, h5py and Pillow only, no Keras
    from vae.data import DataError, is_image_folder, load_images
    from vae.folders import scan_folder
    from vae.weights import WeightsError, weights_layout

    def unusable(error):
        if args.debug:
            raise error
        parser.exit(1, f"{parser.prog}: error: {error}\n")

    if args.weights:
        if args.checkpoint_dir or args.resume:
            parser.fail(
                "-w loads weights and skips training, --checkpoint-dir and --resume "
                "are for training: give one or the other"
            )
        if args.logdir:
            parser.fail(
                "-w loads weights and skips training, --logdir logs training: give one or the other"
            )
        if not os.path.isfile(args.weights):
            what = "is a folder" if os.path.isdir(args.weights) else "no such file"
            parser.fail(f"weights: {args.weights}: {what}; pass the weights file to -w")
        try:
            weights_layout(args.weights)
        except WeightsError as error:
            unusable(error)
    args.images = args.folder = None
    if args.data is not None:
        if not os.path.exists(os.path.expanduser(args.data)):
            parser.fail(
                f"data: {args.data}: no such file or folder; pass --data PATH to a "
                ".npz, a folder of MNIST IDX files or a folder of images"
            )
        try:
            # Read now, before TensorFlow's start-up, and kept for training
            # (vae.workflow.load_data): a folder to stream only listed, and
            # its images' headers read.
            if stream_folders and is_image_folder(args.data):
                args.folder = scan_folder(
                    os.path.expanduser(args.data),
                    args.image_size,
                    args.validation_split,
                    args.seed,
                    args.skip_bad_images,
                )
            else:
                args.images = load_images(
                    args.data, args.dataset, args.image_size, args.validation_split, args.seed
                )
        except DataError as error:
            unusable(error)
    _writable_folder(parser, "--out", args.out)
    if args.logdir:
        _writable_folder(parser, "--logdir", args.logdir)
        # tf.summary writes the logs whatever the Keras backend, but its scalars and
        # images are implemented in the tensorboard package, which TensorFlow no
        # longer installs: say so now, not after the first epoch.
        import importlib.util

        missing = [
            name for name in ("tensorflow", "tensorboard") if importlib.util.find_spec(name) is None
        ]
        if missing:
            parser.fail(
                f"--logdir: writing TensorBoard logs needs {' and '.join(missing)}, "
                f"not installed; pip install {' '.join(missing)}, or leave out --logdir"
            )
    if args.resume and not args.checkpoint_dir:
        parser.fail(
            "--resume needs --checkpoint-dir DIR, the folder the interrupted run backed up to"
        )
    if args.checkpoint_dir:
        _writable_folder(parser, "--checkpoint-dir", args.checkpoint_dir)
        backup = os.path.join(args.checkpoint_dir, args.name)
        epochs_done = _backup_epochs(backup)
        if args.resume and epochs_done is None:
            parser.fail(
                f"--resume: no backup of {args.name} in {args.checkpoint_dir} (the run "
                "finished, or stopped before its first epoch ended); run without "
                "--resume to start afresh"
            )
        if not args.resume and epochs_done is not None:
            parser.fail(
                f"--checkpoint-dir: {backup} holds the backup of an unfinished run "
                f"({epochs_done} epochs done); add --resume to continue it, or delete "
                "that folder to start afresh"
            )


# Keras backends the scripts offer, and how to install each one's package.
BACKENDS = {
    "tensorflow": "pip install tensorflow",
    "jax": "pip install jax",
    "torch": "pip install torch",
}


def add_backend_flag(parser):
    """Adds `--backend {jax,tensorflow,torch}`; pass its value to `choose_backend`."""
    parser.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        help="the Keras backend to run on (default: $KERAS_BACKEND, else "
        "Keras's configured one, normally tensorflow); weights files "
        "are the same on every backend",
    )


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
            parser.exit(
                2,
                f"{parser.prog}: error: --backend {backend}: Keras was already "
                f"imported with the {keras.backend.backend()} backend in this "
                f"process; set KERAS_BACKEND={backend} before anything imports "
                "Keras, or run the script in a fresh process\n",
            )
        import importlib.util

        if importlib.util.find_spec(backend) is None:
            parser.exit(
                2,
                f"{parser.prog}: error: --backend {backend}: the {backend} package "
                f"is not installed; {BACKENDS[backend]}, or choose another backend\n",
            )
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


# What TensorFlow's C++ side prints while it starts, on every run: the note
# that absl logs to stderr before it is initialized, oneDNN's note, and on a
# machine without a GPU the search for CUDA ending in "E0000 ... failed call
# to cuInit". TF_CPP_MIN_LOG_LEVEL no longer silences them (TensorFlow 2.21
# logs through absl), so a script starts TensorFlow with its stderr aside.
_START_UP_CHATTER = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
    r"Could not find cuda drivers|failed call to cuInit|Unable to register cu\w+ factory|"
    r"computation placer already registered|TF-TRT Warning|This TensorFlow binary is "
    r"optimized to use|rebuild TensorFlow with the appropriate compiler flags|"
    r"cuda_executor|cuda_diagnostics|kernel driver does not appear to be running"
)


def start_tensorflow_quietly(args, argv):
    """Imports TensorFlow and finds its devices with stderr caught, then shows what matters.

    For a script's own command line on the TensorFlow backend, unless
    `--debug`: the start-up chatter (`_START_UP_CHATTER`) is dropped, and any
    other line TensorFlow printed meanwhile is shown as it was.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if argv is not None or getattr(args, "debug", False) or "tensorflow" in sys.modules:
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # where the search for CUDA prints
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        lines = caught.read().decode(errors="replace").splitlines()
    for line in lines:
        if not _START_UP_CHATTER.search(line):
            print(line, file=sys.stderr)


def _set_up_process(parser, backend, argv):
    """Before Keras starts: the backend; and for a script's own command line (`argv`
    None), one-line warnings and, on JAX, the restart with huge pages."""
    choose_backend(parser, backend, command_line=argv is None)
    if argv is None:
        print_warnings_in_one_line(parser.prog)


class BatchForImages:
    """A `--batch-size` default that follows the images: `batch` up to `side` x `side`
    pixels, halved for each doubling of the longer side beyond, at least 8.

    vae_images.py's: 64 up to 64x64, 32 at 128x128, 16 at 256x256. A batch's
    training memory grows with its pixels: 64 images of 128x128 took 1.75 GB
    more than the model alone, 32 took 1.0 GB (benchmarks/README.md).
    """

    def __init__(self, batch=64, side=64):
        self.batch, self.side = batch, side

    def __call__(self, image_shape):
        halvings = max(0, math.ceil(math.log2(max(image_shape[:2]) / self.side)))
        return max(8, self.batch >> halvings)

    def __str__(self):
        return f"{self.batch} up to {self.side}x{self.side} pixels, halved for each doubling beyond"


def _image_shape(args):
    """The shape of the images of `--data` as read while checking it; MNIST's without it."""
    if args.folder is not None:
        return args.folder.image_shape
    if args.images is not None:
        return args.images.image_shape
    return (28, 28, 1)


def parse_args(
    name,
    description,
    epochs,
    optimizer,
    argv=None,
    defaults=None,
    extra=None,
    iwae=True,
    stream_folders=False,
):
    """Parses the flags shared by the example scripts.

    Args:
        name: the example's name, e.g. `"vae_mlp"`: its weights go to
            `<out>/<name>_<data>.h5` (`vae_mlp_mnist.h5`) and its pictures to
            `<out>/<name>/`.
        description: the `--help` text (the example's docstring).
        epochs: default number of epochs.
        optimizer: the Keras optimizer the example trains with.
        argv: the arguments, `sys.argv[1:]` by default.
        defaults: other defaults for the shared flags, e.g.
            `{"batch_size": 100, "latent_dim": 50}`; the batch size's may be
            a `BatchForImages`, resolved with the images' shape.
        extra: a function that adds the example's own flags to the parser.
        iwae: offer `--k`, training on the importance-weighted bound.
        stream_folders: a `--data` folder of images is read a batch at a
            time during training (`vae.folders.ImageFolder`), not loaded
            whole; `--skip-bad-images` and `--workers` are offered.

    Returns:
        The parsed `argparse.Namespace`, with `name`, `optimizer` and `loss`
        (`"mse"` or `"bce"`, or an `extra` flag's choice) added, and
        `images`, the `vae.data.Images` of `--data` (read while checking
        it), or `None`; with `stream_folders`, `folder`, the
        `vae.folders.FolderScan` of a folder of images, or `None`.

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
    parser.add_argument(
        "-m",
        "--mse",
        action="store_true",
        help="reconstruction loss: mean squared error instead of binary cross-entropy",
    )
    parser.add_argument(
        "-w",
        "--weights",
        metavar="FILE",
        help="load weights from FILE (Keras 3 or original Keras 2 .h5) and skip training",
    )
    parser.add_argument(
        "--epochs", type=positive(0), default=epochs, help=f"training epochs (default {epochs})"
    )
    parser.add_argument(
        "--batch-size", type=positive(1), default=128, help="batch size (default %(default)s)"
    )
    parser.add_argument(
        "--latent-dim",
        type=positive(1),
        default=2,
        help="dimension of z (default %(default)s; plots show the first two)",
    )
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="your data: a folder of PNG/JPEG images (one subfolder per class "
        "gives labels), an .npz with x_train and x_test (y_train, y_test "
        "optional), or a folder of MNIST-style IDX files (default: "
        "--dataset from $VAE_DATA for mnist, else the Keras download, "
        "else the bundled MNIST sample)",
    )
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="mnist",
        help="the dataset Keras downloads when --data is not given; also "
        "names the classes of IDX files (default %(default)s; a sample "
        "is bundled for mnist only, for offline use)",
    )
    parser.add_argument(
        "--image-size",
        type=positive(1),
        nargs=2,
        metavar=("H", "W"),
        help="resize every image to H x W pixels (default: the size of the "
        "first image; images of several sizes need this)",
    )
    parser.add_argument(
        "--validation-split",
        type=_fraction,
        default=0.1,
        metavar="F",
        help="for a folder of images: the fraction held out as the test set, "
        "drawn with --seed (default %(default)s)",
    )
    parser.add_argument(
        "--beta",
        type=_non_negative_float,
        default=1.0,
        metavar="B",
        help="weight of the KL term in the loss (beta-VAE; default %(default)s, the ELBO)",
    )
    parser.add_argument(
        "--kl-warmup",
        type=positive(0),
        default=0,
        metavar="N",
        help="raise the KL weight linearly from 0 to --beta over the first "
        "N epochs (default %(default)s: no warm-up)",
    )
    if iwae:
        parser.add_argument(
            "--k",
            type=positive(1),
            default=1,
            metavar="K",
            help="draws of z per digit: above 1, train on the importance-"
            "weighted bound (IWAE, Burda et al. 2015) instead of the ELBO "
            "(default %(default)s)",
        )
    parser.add_argument(
        "--train-samples",
        type=positive(1),
        metavar="M",
        help="train on a random subset of M digits",
    )
    parser.add_argument(
        "--test-samples",
        type=positive(1),
        metavar="K",
        help="evaluate and plot on a random subset of K digits",
    )
    parser.add_argument(
        "--seed", type=int, help="seed for weights, shuffling and sampling: equal seeds, equal runs"
    )
    add_backend_flag(parser)
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=".",
        help="folder for weights, diagrams and plots (default: current folder)",
    )
    parser.add_argument("--show", action="store_true", help="also open the plots in windows")
    parser.add_argument(
        "--loss",
        choices=["bce", "mse"],
        help="reconstruction loss: binary cross-entropy (default) or mean squared "
        "error (the same as --mse)",
    )
    parser.add_argument(
        "--learning-rate",
        type=_positive_float,
        metavar="RATE",
        help="the optimizer's learning rate (default: Keras's default for it)",
    )
    parser.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="back up the training state to DIR/<name>/ at the end of every "
        "epoch; removed once the weights are saved",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run backed up in --checkpoint-dir from "
        "its last completed epoch (use the flags it had)",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="train data-parallel on every local device (the GPUs, else the "
        "CPU devices): tf.distribute.MirroredStrategy on tensorflow, "
        "keras.distribution.DataParallel on jax; --batch-size stays the "
        "batch of a step, split evenly across the devices",
    )
    parser.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="with --distribute on jax: the address of process 0, which the others "
        "join (keras.distribution.initialize); on tensorflow, TF_CONFIG names the "
        "workers instead",
    )
    parser.add_argument(
        "--num-processes",
        type=positive(1),
        metavar="N",
        help="with --coordinator: how many processes train together",
    )
    parser.add_argument(
        "--process-id",
        type=positive(0),
        metavar="I",
        help="with --coordinator: this process's index, 0 to N - 1 (0 writes the files)",
    )
    parser.add_argument(
        "--mixed-precision",
        nargs="?",
        const="auto",
        metavar="POLICY",
        choices=["auto", *MIXED_PRECISION_POLICIES],
        help="compute in 16 bits with float32 weights, loss and sampling: "
        "mixed_float16 or mixed_bfloat16; without POLICY (auto), "
        "mixed_float16 on a GPU, else mixed_bfloat16",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show Python tracebacks instead of one-line error messages",
    )
    parser.add_argument(
        "--samples",
        type=positive(1),
        metavar="N",
        help="also generate N digits from the prior N(0, I) into "
        "<out>/<name>/samples.png (50 make a 5x10 grid)",
    )
    parser.add_argument(
        "--binarize",
        choices=["none", "static", "dynamic"],
        default="none",
        help="binary digits: 'static' thresholds at 0.5 once, 'dynamic' draws "
        "every pixel afresh each epoch (test digits: one fixed draw); "
        "default %(default)s",
    )
    parser.add_argument(
        "--perturb",
        type=_perturbation,
        default=0.0,
        metavar="FRACTION",
        help="replace this fraction of every training image's pixels by noise, "
        "drawn afresh each epoch: the background model of a likelihood "
        "ratio (examples/score.py --background); default 0",
    )
    parser.add_argument(
        "--logdir",
        metavar="DIR",
        help="write TensorBoard logs to DIR/<name>/: the losses of every epoch "
        "and the digits generated from 16 fixed z (view them with "
        "tensorboard --logdir DIR)",
    )
    if stream_folders:
        parser.add_argument(
            "--skip-bad-images",
            action="store_true",
            help="pass over image files that cannot be read (corrupt, truncated) and "
            "count them, instead of stopping at the first with its name",
        )
        parser.add_argument(
            "--workers",
            type=positive(1),
            default=2,
            metavar="N",
            help="threads that decode the batches ahead of training (default %(default)s)",
        )
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
    if getattr(args, "k", 1) > 1 and (args.beta != 1 or args.kl_warmup):
        parser.fail(
            f"--k {args.k} trains on the importance-weighted bound, which has no KL "
            "term to weight: leave out --beta and --kl-warmup, or --k"
        )
    args.mse = args.loss == "mse"
    _check_paths(parser, args, stream_folders)
    if isinstance(args.batch_size, BatchForImages):
        args.batch_size = args.batch_size(_image_shape(args))
    start_tensorflow_quietly(args, argv)
    if args.distribute:  # before anything runs on the engine
        _join_processes(parser, args)
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
            parser.fail(
                f"--batch-size {args.batch_size} does not split evenly over "
                f"{len(devices)} devices; pass a multiple of {len(devices)}"
            )
        args.devices = devices
        _write_elsewhere_unless_chief(args)
        if len(devices) == 1:
            print(
                f"--distribute: {devices[0]} is the only device, so training runs as without "
                "--distribute"
            )
        else:
            print(
                f"data-parallel training on {len(devices)} devices ({', '.join(devices)}): "
                f"each step splits the batch of {args.batch_size} into "
                f"{args.batch_size // len(devices)} per device"
            )
    if args.mixed_precision:
        from vae.precision import mixed_precision

        policy = mixed_precision(None if args.mixed_precision == "auto" else args.mixed_precision)
        print(
            f"mixed precision ({policy}): layers compute in {policy.removeprefix('mixed_')}; "
            "weights, loss and sampling in float32"
        )


def _join_processes(parser, args):
    """Before anything starts the engine: the other processes of a multi-process run."""
    if (args.coordinator is None) != (args.num_processes is None) or (
        args.coordinator is not None and args.process_id is None
    ):
        parser.fail(
            "--coordinator, --num-processes and --process-id go together: give all three "
            "(python -m vae.launch sets them)"
        )
    from vae.distribute import join_processes

    join_processes(args.coordinator, args.num_processes, args.process_id)


def _write_elsewhere_unless_chief(args):
    """The chief writes the run's weights, pictures and logs; the other processes,
    which run the same steps (their collectives need every process), write
    theirs to a temporary folder, as TensorFlow's multi-worker guide does.
    (Their backups too: `TrainingBackup(write_to=...)`, after resuming from the chief's.)"""
    from vae.distribute import is_chief

    if not is_chief():
        args.out = tempfile.mkdtemp(prefix="vae_worker_")
        if args.logdir:
            args.logdir = os.path.join(args.out, "logs")


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
        prog="evaluate.py",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-w",
        "--weights",
        metavar="FILE",
        required=True,
        help="weights saved by vae_mlp.py, vae_cnn.py, cvae.py or save_weights",
    )
    parser.add_argument(
        "--model",
        choices=["mlp", "cnn", "conv", "burda"],
        required=True,
        help="the architecture: vae_mlp.py's, vae_cnn.py's, cvae.py's, or "
        "Burda et al.'s 784-200-200-50 tanh MLP (benchmarks/quality.py)",
    )
    parser.add_argument(
        "-m",
        "--mse",
        action="store_true",
        help="the model was trained with --mse (a Gaussian decoder)",
    )
    parser.add_argument(
        "--latent-dim",
        type=positive(1),
        help="dimension of z it was trained with (default: 2 for mlp and cnn, "
        "50 for conv and burda)",
    )
    parser.add_argument(
        "--k",
        type=positive(1),
        default=1000,
        help="importance samples per digit (default %(default)s; the published numbers use 5000)",
    )
    parser.add_argument(
        "--binarize",
        choices=["none", "static", "dynamic"],
        default="dynamic",
        help="test digits: 'dynamic', one fixed Bernoulli draw (as the training "
        "scripts' --binarize dynamic); 'static', thresholded at 0.5; "
        "'none', grey levels (no likelihood for cross-entropy then); "
        "default %(default)s",
    )
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="mnist.npz or a folder of MNIST IDX files (default: $VAE_DATA, "
        "else the Keras download, else the bundled sample)",
    )
    parser.add_argument(
        "--test-samples",
        type=positive(1),
        metavar="K",
        help="evaluate a random subset of K test digits (as the training scripts)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive(1),
        default=5000,
        help="decoder passes per step; bounds memory (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, help="seed of the importance samples")
    add_backend_flag(parser)
    args = parser.parse_args(argv)
    _set_up_process(parser, args.backend, argv)
    args.name = "evaluate"
    logits = args.model in ("conv", "burda")
    args.loss = "mse" if args.mse else ("bce_logits" if logits else "bce")
    if args.latent_dim is None:
        args.latent_dim = 50 if logits else 2
    start_tensorflow_quietly(args, argv)
    return args


# vae.scores.SCORES, named here without importing Keras.
SCORE_NAMES = (
    "nll",
    "negative_elbo",
    "reconstruction_error",
    "input_complexity",
    "likelihood_regret",
    "likelihood_ratio",
)


def _score_names(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCORE_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown score {(unknown or [text])[0]!r}: use {', '.join(SCORE_NAMES)}"
        )
    return names


def parse_score_args(description, argv=None):
    """Parses the flags of `examples/score.py`: the model, the images, the reference, the scores.

    Returns:
        The parsed `argparse.Namespace`, with `name` added and `scores`, the
        list of score names to compute.
    """
    parser = _Parser(
        prog="score.py",
        description=description,
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-w",
        "--weights",
        metavar="MODEL",
        required=True,
        help="weights saved by the example scripts (they record the model); "
        "older files need --model and --latent-dim",
    )
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="the images to score: a folder of images (all of them), a folder "
        "of IDX files or an .npz (their test split); default: --dataset's "
        "test split",
    )
    parser.add_argument(
        "--reference",
        metavar="PATH",
        help="in-distribution images the model did not train on, in the forms "
        "of --data: gives thresholds, the anomalous column, ood.json and "
        "the pictures",
    )
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="mnist",
        help="the dataset when --data is not given (default %(default)s)",
    )
    parser.add_argument(
        "--scores",
        type=_score_names,
        metavar="NAMES",
        help="comma-separated scores to compute, of "
        f"{', '.join(SCORE_NAMES)} (default: nll, negative_elbo, "
        "reconstruction_error, input_complexity, and likelihood_ratio "
        "with --background, likelihood_regret with --regret)",
    )
    parser.add_argument(
        "--k",
        type=positive(1),
        default=1000,
        help="importance samples per image (default %(default)s)",
    )
    parser.add_argument(
        "--regret",
        action="store_true",
        help="also compute the likelihood regret (fine-tunes a copy of the "
        "encoder on every image: slow)",
    )
    parser.add_argument(
        "--background",
        metavar="WEIGHTS",
        help="a background model (trained with --perturb) for likelihood_ratio",
    )
    parser.add_argument(
        "--compressor",
        choices=["lzma", "png"],
        default="lzma",
        help="input_complexity's lossless compressor (default %(default)s, "
        "measured best in benchmarks/ood.py)",
    )
    parser.add_argument(
        "--fpr",
        type=_fraction,
        default=0.05,
        metavar="F",
        help="flag images above the (1 - F) quantile of the reference's "
        "scores (default %(default)s)",
    )
    parser.add_argument(
        "--flag-score",
        choices=SCORE_NAMES,
        metavar="NAME",
        help="the score whose threshold sets the anomalous column (default: "
        "input_complexity, the best measured in benchmarks/ood.py)",
    )
    parser.add_argument(
        "--test-samples",
        type=positive(1),
        metavar="N",
        help="score a seeded random N images of --data and of --reference",
    )
    parser.add_argument(
        "--image-size",
        type=positive(1),
        nargs=2,
        metavar=("H", "W"),
        help="resize every image to H x W pixels",
    )
    parser.add_argument(
        "--binarize",
        choices=["static", "dynamic", "none"],
        help="how to binarize the images for a Bernoulli model (default: as "
        "the model's file records it was trained)",
    )
    parser.add_argument(
        "--model",
        choices=["mlp", "cnn", "conv", "burda"],
        help="for a file that records no model: its architecture",
    )
    parser.add_argument(
        "--latent-dim",
        type=positive(1),
        help="for a file that records no model: its dimension of z",
    )
    parser.add_argument(
        "-m",
        "--mse",
        action="store_true",
        help="for a file that records no model: trained with --mse",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the draws and of --test-samples (default %(default)s)",
    )
    add_backend_flag(parser)
    parser.add_argument("--out", metavar="DIR", required=True, help="folder for the results")
    parser.add_argument("--show", action="store_true", help="also open the plots in windows")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show Python tracebacks instead of one-line error messages",
    )
    args = parser.parse_args(argv)
    _set_up_process(parser, args.backend, argv)
    args.name = "score"
    if args.scores is None:
        args.scores = ["nll", "negative_elbo", "reconstruction_error", "input_complexity"]
        args.scores += ["likelihood_ratio"] * bool(args.background)
        args.scores += ["likelihood_regret"] * args.regret
    elif args.regret and "likelihood_regret" not in args.scores:
        args.scores.append("likelihood_regret")
    if "likelihood_ratio" in args.scores and not args.background:
        parser.fail("likelihood_ratio needs --background WEIGHTS, a model trained with --perturb")
    if args.flag_score is None:
        preferred = ("input_complexity", "likelihood_regret", "nll")
        args.flag_score = next((s for s in preferred if s in args.scores), args.scores[0])
    elif args.flag_score not in args.scores:
        parser.fail(
            f"--flag-score {args.flag_score} is not among the scores computed "
            f"({', '.join(args.scores)}); add it to --scores"
        )
    for flag, path in (
        ("-w", args.weights),
        ("--background", args.background),
        ("--data", args.data),
        ("--reference", args.reference),
    ):
        if path is not None and not os.path.exists(os.path.expanduser(path)):
            parser.fail(f"{flag} {path}: no such file or folder")
    _writable_folder(parser, "--out", args.out)
    start_tensorflow_quietly(args, argv)
    return args
