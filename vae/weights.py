"""Saving and loading weights under any name, in Keras 3 or legacy Keras 2 layout.

Keras 3 writes weights only to names ending in `.weights.h5` and reads plain
`.h5` names as the legacy Keras 2 layout. The original examples and their
users' files say `vae_mlp_mnist.h5` for both. These helpers accept any name
and decide by what the file holds; writes are atomic, so a crash or Ctrl-C
leaves the previous file or the new one, never half of one.
"""

import os
import tempfile

import h5py


class WeightsError(ValueError):
    """A weights file that cannot be read, or does not fit the model."""


def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_weights(model, path):
    """Saves `model`'s weights to `path` atomically, whatever its suffix.

    The file is written beside the target under a temporary name, flushed to
    disk, then renamed over `path` in one step.

    Args:
        model: a Keras model.
        path: destination, e.g. `vae_mlp_mnist.h5` or `vae.weights.h5`.

    Example:

    >>> save_weights(vae, "vae_mlp_mnist.h5")
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".partial.weights.h5", dir=directory
    )
    os.close(fd)
    try:
        model.save_weights(temporary)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_directory(directory)


def is_legacy_h5(path):
    """Whether `path` holds weights in the Keras 2 HDF5 layout.

    Raises:
        WeightsError: if the file is missing or is not HDF5.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such weights file; check the path given to -w/--weights")
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            return "layer_names" in root.attrs
    except OSError as error:
        raise WeightsError(
            f"{path}: not a readable HDF5 weights file ({error}); pass a file saved by save_weights"
        ) from None


def load_weights(model, path):
    """Loads weights into `model` from a Keras 3 or a Keras 2 (legacy) HDF5 file.

    The layout is read from the file's content, not its name, so
    `vae_mlp_mnist.h5` written by the original Keras 2 example and one
    written by `save_weights` both load.

    Args:
        model: the model to fill, built like the one that saved the file.
        path: the weights file.

    Raises:
        WeightsError: the file is missing, unreadable or does not fit `model`.

    Example:

    >>> encoder, decoder, vae = build_mlp_vae()
    >>> load_weights(vae, "vae_mlp_mnist.h5")
    """
    path = os.fspath(path)
    legacy = is_legacy_h5(path)
    options = {"by_name": True} if legacy and _saved_by_name(model, path) else {}
    # Keras picks its reader by suffix, so present the file under the suffix
    # that matches its content.
    with tempfile.TemporaryDirectory() as directory:
        alias = os.path.join(directory, "weights" + (".h5" if legacy else ".weights.h5"))
        os.symlink(os.path.abspath(path), alias)
        try:
            model.load_weights(alias, **options)
        except (ValueError, KeyError, OSError) as error:
            reason = " ".join(str(error).split()[:40]) or type(error).__name__
            raise WeightsError(
                f"{path}: these weights do not fit model {model.name!r} ({reason}); "
                "build the model with the options used when the weights were saved"
            ) from None


def _saved_by_name(model, path):
    """Whether every weighted layer of `model` has a namesake in the legacy file.

    The original examples under tf.keras 2 passed encoder tensors to
    `vae.add_loss`, which pulled the encoder's inner layers into `vae`: their
    files list `dense`, `z_mean`, ... beside `encoder` and `decoder`. Keras's
    default legacy reader matches layers by position and would refuse them;
    matching by name loads them, and still fails loudly on any shape mismatch.
    """
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        saved = {
            name.decode() if isinstance(name, bytes) else str(name)
            for name in root.attrs["layer_names"]
        }
    wanted = {layer.name for layer in model.layers if layer.weights}
    return bool(wanted) and wanted <= saved
