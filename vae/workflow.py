"""What the example scripts share apart from their flags: data, training, saving, pictures.

An example parses its flags (`vae.cli`), then tells the seeds' story in its
own lines, each a call to this module or to Keras:

>>> with workflow.one_line_errors(args):
...     data = workflow.load_data(args, flatten=True)
...     encoder, decoder, vae = build_mlp_vae(original_dim=data.x_test.shape[1])
...     workflow.describe(args, encoder, decoder, vae)
...     vae.compile(optimizer=workflow.optimizer(args))
...     if args.weights:
...         workflow.load(args, vae)
...     else:
...         workflow.fit_and_save(args, vae, data)
...     workflow.plot(args, encoder, decoder, vae, data)
...     workflow.evaluate(args, vae, data)

The safety net lives here: a NaN loss leaves the previous weights file as it
was, Ctrl-C saves the weights reached so far, `--checkpoint-dir` backs up
every epoch, and a bad file ends the script with one line, never a traceback
(`--debug` shows it).
"""

import contextlib
import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae.data import DataError, binarize, load_images


@dataclass(frozen=True)
class Data:
    """The data of a run, ready for `fit`, `evaluate` and the pictures.

    Attributes:
        train: what `fit` trains on: the training images (as the model takes
            them), or a `DynamicBinarization` drawing them afresh each epoch;
            with labels for a conditional model, `(images, one_hot)`.
        test: the test set as the model takes it (`validation_data`, `evaluate`).
        x_test: the test images (flattened for an MLP; binarized if asked).
        y_test: their labels, or `None` for data without labels.
        image_shape: `(height, width, channels)` of one image.
        class_names: the classes' names, or `None`.
        name: the data's name in the weights file's name: `--dataset`
            (`mnist`, `fashion_mnist`), or the name of a folder of images.
    """

    train: object
    test: object
    x_test: np.ndarray
    y_test: np.ndarray | None
    image_shape: tuple
    class_names: tuple | None
    name: str


def fail(args, error, message=None, status=1):
    """Ends the script with one line on stderr and `status`; under --debug, the traceback.

    Interruptions (status 130) are no error: they never show a traceback.
    """
    if getattr(args, "debug", False) and status != 130:
        raise error
    print(f"{args.name}.py: {message or f'error: {error}'}", file=sys.stderr)
    sys.exit(status)


@contextlib.contextmanager
def one_line_errors(args):
    """Ends the script with one line for unusable data, weights or files (1), or Ctrl-C (130)."""
    from vae.weights import WeightsError

    try:
        yield
    except (DataError, WeightsError, OSError) as error:
        fail(args, error)
    except KeyboardInterrupt as error:  # Ctrl-C outside training: nothing half done to save
        fail(args, error, "interrupted", status=130)


def _subset(x, y, size, seed):
    if size is None or size >= len(x):
        return x, y
    # Seeded even without --seed, so runs without it compare on the same digits.
    chosen = np.random.default_rng(0 if seed is None else seed).choice(len(x), size, replace=False)
    return x[chosen], None if y is None else y[chosen]


def _split_evenly(args, x, y, which):
    """Leaves out the last few digits of a set whose last batch would not split over the devices."""
    extra = len(x) % len(args.devices) if args.devices else 0
    if extra:
        print(
            f"--distribute: left out the last {extra} of the {len(x)} {which} digits, so "
            f"that every batch splits evenly over the {len(args.devices)} devices"
        )
    return x[: len(x) - extra], None if y is None else y[: len(y) - extra]


def _data_name(args):
    """The data's name for the weights file: the folder's for a folder of images, else `--dataset`.

    IDX files and `.npz` archives hold MNIST-style datasets, which `--dataset`
    names (as it names their classes).
    """
    path = Path(args.data).expanduser().resolve() if args.data else None
    if (
        path is None
        or not path.is_dir()
        or any(path.glob("*-idx?-ubyte*"))
        or any(path.glob("*.npz"))
    ):
        return args.dataset
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in path.name) or args.dataset


def load_data(args, flatten=False, multiple_of=1, labels=False):
    """Loads `--data` / `--dataset` as the flags ask, for a model of the given kind.

    Args:
        args: flags from `vae.cli.parse_args`.
        flatten: images as rows of pixels (an MLP's input).
        multiple_of: height and width must be multiples of this (4 for the
            CNNs, which halve them twice), or of what this function of
            `(height, width)` returns.
        labels: a conditional model's data: the one-hot labels go with the
            images, and data without labels is an error.

    Returns:
        A `Data`.

    Raises:
        DataError: the data cannot be used, or does not fit the model.
    """
    if getattr(args, "folder", None) is not None:
        return _streamed_data(args, multiple_of)
    # Read once: the flag check already loaded a --data path (vae.cli).
    images = args.images or load_images(
        args.data, args.dataset, args.image_size, args.validation_split, args.seed
    )
    source = args.data or args.dataset
    _check_divisible(source, images.image_shape, multiple_of)
    if labels and images.y_train is None:
        raise DataError(
            f"data: {source}: has no labels, and a conditional VAE needs them; use "
            "a folder with one subfolder per class, or an .npz with y_train and y_test"
        )
    x_train, y_train = _subset(images.x_train, images.y_train, args.train_samples, args.seed)
    x_test, y_test = _subset(images.x_test, images.y_test, args.test_samples, args.seed)
    x_train, y_train = _split_evenly(args, x_train, y_train, "training")
    x_test, y_test = _split_evenly(args, x_test, y_test, "test")
    if flatten:
        x_train, x_test = (x.reshape(len(x), -1) for x in (x_train, x_test))
    train_labels = test_labels = None
    if labels:
        from vae.conditional import one_hot

        classes = len(images.class_names)
        train_labels, test_labels = one_hot(y_train, classes), one_hot(y_test, classes)
    if args.binarize == "static":
        x_train, x_test = binarize(x_train), binarize(x_test)
    elif args.binarize == "dynamic":
        # A fixed draw of the test digits, so every run scores the same ones.
        x_test = binarize(x_test, "dynamic")
    perturb = getattr(args, "perturb", 0.0)
    if args.binarize == "dynamic" or perturb:
        from vae.data import DynamicBinarization

        # Batches drawn afresh each epoch (with their labels); --perturb
        # replaces a fraction of their pixels by noise (a background model).
        train = DynamicBinarization(
            x_train,
            args.batch_size,
            seed=args.seed,
            labels=train_labels,
            binarize=args.binarize == "dynamic",
            perturb=perturb,
        )
    else:
        train = x_train if train_labels is None else (x_train, train_labels)
    test = x_test if test_labels is None else (x_test, test_labels)
    return Data(
        train, test, x_test, y_test, images.image_shape, images.class_names, _data_name(args)
    )


def _check_divisible(source, image_shape, multiple_of):
    height, width, _ = image_shape
    if callable(multiple_of):  # a model whose depth follows the image
        multiple_of = multiple_of((height, width))
    if height % multiple_of or width % multiple_of:
        raise DataError(
            f"data: {source}: images are {height}x{width}, and this model needs height and "
            f"width divisible by {multiple_of}; pass --image-size H W with both divisible by "
            f"{multiple_of} (e.g. --image-size {_round_up(height, multiple_of)} "
            f"{_round_up(width, multiple_of)})"
        )


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


# Held-out images decoded into memory for the pictures of a streamed folder
# (the latent means' scatter, reconstructions): enough to see, bounded in size:
# 1,000 RGB images of 64x64 (49 MB of float32), 250 of 128x128.
PICTURED_IMAGES = 1000
PICTURED_VALUES = PICTURED_IMAGES * 64 * 64 * 3


def _streamed_data(args, multiple_of):
    """The `Data` of a folder of images read a batch at a time (`vae.folders.ImageFolder`)."""
    from vae.folders import ImageFolder

    split, shape, skipped = args.folder
    _check_divisible(args.data, shape, multiple_of)
    train_files = split.train_files[: args.train_samples]
    test_files = split.test_files[: args.test_samples]
    passed_over = f", {len(skipped)} unreadable passed over" if skipped else ""
    print(
        f"found {len(split.train_files) + len(split.test_files) + len(skipped)} images in "
        f"{args.data}{passed_over}: {len(train_files)} for training, {len(test_files)} "
        f"held out; {shape[0]}x{shape[1]}x{shape[2]}, decoded a batch at a time"
    )

    def stream(files, shuffle):
        return ImageFolder(
            files,
            args.batch_size,
            image_size=shape[:2],
            seed=args.seed,
            shuffle=shuffle,
            skip_bad=args.skip_bad_images,
            image_shape=shape,
            workers=args.workers,
        )

    # The pictured images through a stream too, so that unreadable ones are
    # handled as in training.
    pictured_count = min(PICTURED_IMAGES, PICTURED_VALUES // math.prod(shape))
    pictured = stream(test_files[:pictured_count], False)
    x_test = np.concatenate([pictured[i][0] for i in range(len(pictured))])
    y_test = None
    if split.test_labels is not None:
        kept = [i for i, path in enumerate(pictured.files) if path not in pictured.skipped]
        y_test = split.test_labels[kept]
    test = stream(test_files, False)
    test.skipped = list(pictured.skipped)
    return Data(
        stream(train_files, True), test, x_test, y_test, shape, split.class_names, _data_name(args)
    )


@contextlib.contextmanager
def _streamed_errors(data):
    """A streamed folder's unreadable file as its own one-line DataError.

    TensorFlow's input pipeline wraps what a PyDataset raises in an
    InvalidArgumentError whose text is a page long.
    """
    try:
        yield
    except DataError:
        raise
    except Exception as error:
        for stream in (data.train, data.test):
            if getattr(stream, "error", None) is not None:
                raise stream.error from error
        raise


def describe(args, encoder, decoder, vae):
    """Prints the backend and the models' summaries, and draws their diagrams.

    A `-w` file that does not fit the model fails here, before any of it.
    """
    import keras

    from vae.plotting import plot_architecture
    from vae.weights import check_fits

    if getattr(args, "weights", None):
        check_fits(vae, args.weights)

    # The log says which engine ran: speed and the last digits differ between them.
    print(f"Keras {keras.__version__} on the {keras.backend.backend()} backend")
    encoder.summary()
    decoder.summary()
    vae.summary()
    plot_architecture(encoder, decoder, os.path.join(args.out, args.name))


def optimizer(args):
    """The example's optimizer, with --learning-rate if given."""
    rate = getattr(args, "learning_rate", None)
    if rate is None or not isinstance(args.optimizer, str):
        return args.optimizer  # an example that builds its own optimizer sets its own rate
    import keras

    built = keras.optimizers.get(args.optimizer)
    built.learning_rate = rate
    return built


def weights_path(args, data):
    """Where the trained weights go: `<out>/<name>_<data>.h5`, e.g. `vae_mlp_mnist.h5`."""
    return os.path.join(args.out, f"{args.name}_{data.name}.h5")


def load(args, vae):
    """Loads `-w` into `vae` (Keras 3 or original Keras 2 weights): training is skipped."""
    from vae.weights import load_weights

    load_weights(vae, args.weights)
    print(f"loaded weights from {args.weights}; training skipped")


def _tensorboard(args, image_shape):
    """The callbacks of --logdir: Keras's TensorBoard for the losses, and generated digits."""
    import keras

    from vae.callbacks import TensorBoardImages

    logdir = os.path.join(args.logdir, args.name)
    print(f"TensorBoard logs go to {logdir}; view them with: tensorboard --logdir {args.logdir}")
    return [
        keras.callbacks.TensorBoard(logdir),
        TensorBoardImages(logdir, seed=args.seed, image_shape=image_shape),
    ]


def fit_and_save(args, vae, data, callbacks=()):
    """Fits `vae` under the safeguards, then saves its weights (`weights_path`).

    `--kl-warmup` raises the KL weight over the first epochs; `--logdir`
    logs to TensorBoard. A NaN or infinite loss ends the script with status
    1 and leaves the weights file as it was; Ctrl-C saves the weights reached
    so far and ends it with status 130; `--checkpoint-dir` backs up every
    epoch, `--resume` continues from that backup.

    Returns:
        The `History` of `fit`.
    """
    from vae.callbacks import KLWarmup
    from vae.distribute import lost_worker
    from vae.safeguards import (
        NonFiniteLossError,
        StopOnInterrupt,
        StopOnNonFiniteLoss,
        TrainingBackup,
        TrainingInterrupted,
    )
    from vae.weights import WeightsError, describe_mismatch, save_weights

    weights_file = weights_path(args, data)
    # Recorded in the weights file: the images it scores are binarized as these were.
    vae.binarization = None if args.binarize == "none" else args.binarize
    # The NaN check first, so no other callback sees the ruined epoch.
    before = [StopOnNonFiniteLoss()]
    backup = None
    if args.checkpoint_dir:
        from vae.distribute import is_chief

        backup = TrainingBackup(
            os.path.join(args.checkpoint_dir, args.name),
            write_to=None if is_chief() else os.path.join(args.out, "backup"),
        )
        if args.resume:
            mismatch = describe_mismatch(vae, backup.weights_path)
            if mismatch:
                raise WeightsError(
                    f"--resume: the backup {backup.weights_path} does not fit this model: "
                    f"{mismatch}; resume with the flags of the interrupted run, or delete "
                    f"{backup.backup_dir} to start afresh"
                )
            print(
                f"resuming from {backup.backup_dir}: {backup.completed_epochs()} of "
                f"{args.epochs} epochs done"
            )
        before.append(backup)
    if args.kl_warmup:
        before.append(KLWarmup(args.kl_warmup))
    callbacks = list(callbacks)
    if args.logdir:
        callbacks += _tensorboard(args, data.image_shape)
    # Last, so that the backup of an epoch completed is written before it stops.
    stop = StopOnInterrupt()
    train, validation = _batches_of_this_process(args, data)
    if args.resume and hasattr(train, "resume_after"):  # a PyDataset that orders itself
        train.resume_after(backup.completed_epochs())
    try:
        with _streamed_errors(data):
            history = vae.fit(
                train,
                epochs=args.epochs,
                batch_size=args.batch_size,
                validation_data=validation,
                callbacks=[*before, *callbacks, stop],
            )
    except NonFiniteLossError as error:
        kept = (
            f"; the backup in {backup.backup_dir} keeps epoch {backup.completed_epochs()}"
            if backup and backup.completed_epochs()
            else ""
        )
        fail(
            args,
            error,
            f"error: {error}, so {weights_file} was not written{kept}; "
            "lower the learning rate (--learning-rate) or check the data",
        )
    except TrainingInterrupted as where:
        save_weights(vae, weights_file)
        resume = ""
        if backup and backup.completed_epochs():
            resume = (
                f"; --resume continues from the end of epoch {backup.completed_epochs()} "
                f"(backup in {backup.backup_dir})"
            )
        fail(
            args,
            where,
            f"{where}: saved the weights reached so far to {weights_file}{resume}",
            status=130,
        )
    except Exception as error:
        lost = lost_worker(error)
        if lost is None:
            raise
        fail(
            args,
            error,
            f"error: {lost} of this run stopped answering, so training stopped and "
            f"{weights_file} was not written; start all the processes again"
            + (" with --resume" if backup else ""),
        )
    finally:
        stop.restore()
    save_weights(vae, weights_file)
    print(f"saved weights to {weights_file}")
    if backup:
        backup.remove()  # only now: until the weights were saved, it was the only copy
    if stop.interrupted:  # Ctrl-C after the last batch: the run is complete, stop here
        fail(
            args,
            KeyboardInterrupt(),
            f"interrupted after the last epoch: saved the weights to {weights_file}",
            status=130,
        )
    return history


def report_skipped(args, data):
    """Prints the unreadable files of a streamed folder that --skip-bad-images passed over."""
    if getattr(args, "folder", None) is None:
        return
    skipped = dict.fromkeys(
        [
            *args.folder.skipped,
            *getattr(data.train, "skipped", ()),
            *getattr(data.test, "skipped", ()),
        ]
    )
    if skipped:
        names = ", ".join(str(path) for path in list(skipped)[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        print(f"passed over {len(skipped)} unreadable image(s): {names}{more}")


def _validation(data):
    """`validation_data` of `fit`: a streamed folder as it is, arrays with no targets."""
    import keras

    return data.test if isinstance(data.test, keras.utils.PyDataset) else (data.test, None)


def _batches_of_this_process(args, data):
    """`fit`'s training and validation data: on JAX with --distribute, this
    process's share of each batch (`ProcessShare`: all of it, unless several
    processes train together)."""
    import keras

    if not args.devices or keras.backend.backend() != "jax":
        return data.train, _validation(data)
    from vae.distribute import ProcessShare

    return (
        ProcessShare(data.train, args.batch_size, seed=args.seed),
        ProcessShare(data.test, args.batch_size, shuffle=False),
    )


def _end_data_parallel(args, vae):
    if args.devices:  # the pictures predict on batches of any size
        from vae.distribute import end_data_parallel

        end_data_parallel(vae)


def plot(args, encoder, decoder, vae, data):
    """Draws the pictures into `<out>/<name>/`.

    `vae_mean.png` (the test set's latent means) and `digits_over_latent.png`
    (digits decoded over the latent plane), as the original examples;
    `reconstructions.png` and `interpolation.png`; `explorer.html`, the
    latent space to explore by hand in a browser (`vae.explorer`); and with
    `--samples N`, `samples.png`, N digits generated from the prior.
    """
    from vae.explorer import explore
    from vae.plotting import plot_interpolation, plot_reconstructions, plot_results, plot_samples

    _end_data_parallel(args, vae)
    # Decoders of logits (build_conv_vae) are drawn through a sigmoid.
    logits = getattr(vae, "reconstruction", None) == "bce_logits"
    pictures = os.path.join(args.out, args.name)
    shape = data.image_shape
    x_test, y_test = data.x_test, data.y_test
    plot_results(
        (encoder, decoder),
        (x_test, y_test),
        batch_size=args.batch_size,
        model_name=pictures,
        show=args.show,
        logits=logits,
        image_shape=shape,
        class_names=data.class_names,
    )
    plot_reconstructions(
        encoder,
        decoder,
        x_test,
        os.path.join(pictures, "reconstructions.png"),
        logits=logits,
        show=args.show,
        image_shape=shape,
    )
    # From the first test digit to the first one of another class (the second
    # digit without labels).
    other = 1 if y_test is None else max(int(np.argmax(y_test != y_test[0])), 1)
    plot_interpolation(
        encoder,
        decoder,
        x_test[0],
        x_test[other],
        os.path.join(pictures, "interpolation.png"),
        logits=logits,
        show=args.show,
        image_shape=shape,
    )
    page = explore(
        encoder,
        decoder,
        x_test,
        y_test,
        logits=logits,
        image_shape=shape,
        class_names=data.class_names,
        title=f"{args.name}: the latent space",
        batch_size=args.batch_size,
    ).save(os.path.join(pictures, "explorer.html"))
    print(f"saved the latent space to explore in a browser to {page}")
    if args.samples:
        samples_file = os.path.join(pictures, "samples.png")
        plot_samples(
            decoder,
            args.samples,
            samples_file,
            seed=args.seed,
            logits=logits,
            show=args.show,
            image_shape=shape,
        )
        print(f"saved {args.samples} digits generated from the prior to {samples_file}")


def _test_count(data):
    """How many test images `evaluate` scores: all of a streamed folder's, not the pictured few."""
    files = getattr(data.test, "files", None)
    return len(data.x_test) if files is None else len(files)


def evaluate(args, vae, data):
    """Prints the test-set loss and its terms, and returns them.

    Returns:
        A dict with `loss`, `reconstruction_loss`, `kl_loss` and
        `negative_elbo` (the loss without beta, a KL warm-up or k > 1 draws).
    """
    with _streamed_errors(data):
        metrics = vae.evaluate(data.test, batch_size=args.batch_size, verbose=0, return_dict=True)
    terms = f"reconstruction {metrics['reconstruction_loss']:.2f} + KL {metrics['kl_loss']:.2f}"
    import keras

    # Read as NumPy: under tf.distribute the variable is mirrored, and float() refuses it.
    weight = float(keras.ops.convert_to_numpy(vae.kl_weight))
    if vae.k > 1:
        print(
            f"test loss: {metrics['loss']:.2f} nats per digit (the importance-weighted bound "
            f"of k = {vae.k} draws) on {_test_count(data)} digits"
        )
        print(f"test negative ELBO: {metrics['negative_elbo']:.2f} nats per digit ({terms})")
    elif weight != 1.0:
        print(
            f"test loss: {metrics['loss']:.2f} nats per digit ({terms} x {weight:g}) on "
            f"{_test_count(data)} digits"
        )
        print(f"test negative ELBO (KL weight 1): {metrics['negative_elbo']:.2f} nats per digit")
    else:
        print(
            f"test loss: {metrics['loss']:.2f} nats per digit ({terms}) on "
            f"{_test_count(data)} digits"
        )
    return metrics


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
        args: flags from `vae.cli.parse_evaluation_args`.
        models: `(encoder, decoder, vae)` from the builder the weights came from.

    Returns:
        A dict: `elbo` and `nll`, each `(mean, standard error)`; `nll` is
        `None` where not reported.
    """
    from vae.data import load_mnist
    from vae.evaluation import (
        elbo,
        importance_sampled_log_likelihood,
        is_binary,
        mean_and_standard_error,
    )
    from vae.weights import load_weights

    encoder, _, vae = models
    with one_line_errors(args):
        _, (x_test, y_test) = load_mnist(args.data, flatten=len(encoder.input.shape) == 2)
        x_test, _ = _subset(x_test, y_test, args.test_samples, args.seed)
        if args.binarize != "none":
            x_test = binarize(x_test, args.binarize)
        load_weights(vae, args.weights)
    import keras

    print(
        f"{vae.name} ({vae.reconstruction} likelihood) from {args.weights}, "
        f"{len(x_test)} test digits, {_DIGITS[args.binarize]}; "
        f"{keras.backend.backend()} backend"
    )
    gaussian = vae.reconstruction == "mse"
    nll = None
    if gaussian or is_binary(x_test):
        log_px, elbos = importance_sampled_log_likelihood(
            vae,
            x_test,
            k=args.k,
            batch_size=args.batch_size,
            seed=args.seed,
            return_elbo=True,
        )
        nll = mean_and_standard_error(-log_px)
    else:
        with warnings.catch_warnings():  # the note below says it, in full
            warnings.simplefilter("ignore", UserWarning)
            elbos = elbo(vae, x_test, batch_size=args.batch_size, seed=args.seed)
    result = {"elbo": mean_and_standard_error(elbos), "nll": nll}
    print(
        f"test ELBO: {result['elbo'][0]:.2f} +- {result['elbo'][1]:.2f} nats per digit "
        "(+- one standard error over digits)"
    )
    if nll is not None:
        print(f"NLL (importance sampled, k={args.k}): {nll[0]:.2f} +- {nll[1]:.2f} nats per digit")
    if gaussian:
        print(
            "note: a Gaussian decoder (variance 1/2 per pixel) gives a density, not a "
            "probability: these numbers compare with no binarized-MNIST result"
        )
    elif nll is None:
        print(
            "note: binary cross-entropy on grey levels is not a proper likelihood, so the "
            "ELBO above bounds no log-probability and no NLL is reported; pass "
            "--binarize dynamic (or static) for likelihood numbers"
        )
    return result
