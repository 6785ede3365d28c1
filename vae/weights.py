"""Saving and loading weights under any name, in Keras 3 or legacy Keras 2 layout.

Keras 3 writes weights only to names ending in `.weights.h5` and reads plain
`.h5` names as the legacy Keras 2 layout. The original examples and their
users' files say `vae_mlp_mnist.h5` for both. These helpers accept any name
and decide by what the file holds; writes are atomic (`vae.atomic`), so a
crash, Ctrl-C or `kill -9` leaves the previous file or the new one, never half
of one.

A file that cannot be used raises `WeightsError` with one line naming the
file, the problem and the fix: a missing file, a PNG or a text file, an HDF5
file cut short, or weights of another architecture (then the first layer
whose shapes differ, with both shapes, read from the file with h5py).
"""

import json
import os
import re
import tempfile
import warnings
import zipfile

import h5py

from vae.atomic import atomic_write

__all__ = [
    "WeightsError",
    "check_fits",
    "describe_mismatch",
    "is_legacy_h5",
    "load_model",
    "load_weights",
    "read_record",
    "save_model",
    "save_weights",
    "weights_layout",
]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_FIX = (
    "pass a weights file written by save_weights, by the example scripts or by the "
    "original Keras 2 examples"
)
# The member of a `.keras` archive that holds the weights (Keras 3 layout).
_ARCHIVE_WEIGHTS = "model.weights.h5"
# The root attribute of a weights file that records how its model was built
# (`vae.models.records_architecture`) and how its images were binarized.
RECORD_ATTRIBUTE = "vae_model"


class WeightsError(ValueError):
    """A weights file that cannot be read, or does not fit the model."""


_REBUILD = (
    "build the model with the options it had when the weights were saved "
    "(the same script, the same --latent-dim)"
)


def _error(path, problem, fix=_FIX):
    return WeightsError(f"weights: {path}: {problem}; {fix}")


def save_weights(model, path):
    """Saves `model`'s weights to `path` atomically, whatever its suffix.

    The file is written beside the target under a temporary name, flushed to
    disk, then renamed over `path` in one step (`vae.atomic.atomic_write`).

    Args:
        model: a Keras model.
        path: destination, e.g. `vae_mlp_mnist.h5` or `vae.weights.h5`.

    Example:

    >>> save_weights(vae, "vae_mlp_mnist.h5")

    A model of this package's builders also leaves its record in the file
    (`read_record`): the builder, its arguments and the binarization of the
    images it trained on (`model.binarization`, set by the example scripts),
    so that `load_model` rebuilds it from the file alone.
    """
    record = _record_of(model)

    def write(temporary):
        model.save_weights(temporary)
        if record:
            with h5py.File(temporary, "a") as f:
                f.attrs[RECORD_ATTRIBUTE] = json.dumps(record)

    atomic_write(path, write, suffix=".weights.h5")


def _record_of(model):
    architecture = getattr(model, "architecture", None)
    if not architecture:
        return None
    return {
        "builder": architecture["builder"],
        "arguments": dict(architecture["arguments"]),
        "binarize": getattr(model, "binarization", None),
    }


def read_record(path):
    """The record `save_weights` left in a weights file, or `None` (older and Keras 2 files).

    Returns:
        `{"builder": "build_mlp_vae", "arguments": {...}, "binarize": "dynamic"}`
        (`binarize` is `None`, `"static"` or `"dynamic"`), or `None`.

    Raises:
        WeightsError: as `weights_layout`, or the record cannot be read.
    """
    if weights_layout(path) != "keras3":
        return None
    with h5py.File(path, "r") as f:
        text = f.attrs.get(RECORD_ATTRIBUTE)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise _error(
            path, f"its model record is not JSON ({error})", "save the weights anew"
        ) from None


def load_model(path, fallback=None):
    """Builds the model a weights file was saved from, and loads the weights into it.

    Args:
        path: a weights file written by `save_weights` (or an example script).
        fallback: the `vae.architecture` record to build for a file without
            one (older files, Keras 2 files), e.g. from `--model` and
            `--latent-dim`; `None` makes such a file an error.

    Returns:
        `(encoder, decoder, vae, record)`; `vae.binarization` is set from the record.

    Raises:
        WeightsError: the file is unusable, holds no record and no fallback
            was given, or does not fit the model its record describes.

    Example:

    >>> encoder, decoder, vae, record = load_model("vae_mlp_mnist.h5")
    """
    from vae.models import build_from_architecture

    record = read_record(path) or fallback
    if record is None:
        raise _error(
            path,
            "records no model (older and Keras 2 files do not)",
            "say how it was built: --model and --latent-dim",
        )
    try:
        encoder, decoder, vae = build_from_architecture(record)
    except (TypeError, ValueError) as error:
        raise _error(
            path,
            f"records a model this package cannot build ({error})",
            "pass a file written by this package's scripts",
        ) from None
    load_weights(vae, path)
    vae.binarization = record.get("binarize")
    return encoder, decoder, vae, record


def save_model(model, path):
    """Saves the whole model (architecture, weights, optimizer) to a `.keras` file, atomically.

    `keras.models.load_model(path)` reads it back, in safe mode.

    Args:
        model: a Keras model, e.g. the `vae` of `build_mlp_vae`.
        path: destination; its name must end in `.keras`, the suffix Keras
            reads the format by.

    Raises:
        ValueError: `path` does not end in `.keras`.

    Example:

    >>> save_model(vae, "vae_mlp.keras")
    >>> vae = keras.models.load_model("vae_mlp.keras")
    """
    if not os.fspath(path).endswith(".keras"):
        raise ValueError(
            f"{path}: a whole-model file needs a name ending in .keras "
            "(for weights alone use save_weights)"
        )
    atomic_write(path, model.save, suffix=".keras")


def _what_it_is(head):
    """A few words on what a file starting with `head` (not HDF5) is."""
    if not head:
        return "an empty file"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image, not an HDF5 weights file"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image, not an HDF5 weights file"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file, not an HDF5 weights file"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a zip archive, but not a Keras model (.keras) holding weights"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "a text file, not an HDF5 weights file"
    return f"not an HDF5 weights file (it starts with {head[:8]!r})"


def _open_hdf5(path):
    """`h5py.File(path)`, or a `WeightsError` that says why the file cannot be one."""
    try:
        return h5py.File(path, "r")
    except OSError as error:
        reason = str(error)
    if "truncated file" in reason:
        # h5py: "... (truncated file: eof = 100, sblock->base_addr = 0, stored_eof = 3266328)"
        sizes = re.search(r"\beof = (\d+).*\bstored_eof = (\d+)", reason)
        sizes = f" ({sizes[1]} of {sizes[2]} bytes)" if sizes else ""
        raise _error(
            path,
            f"truncated HDF5 file{sizes}: it was cut short while being written or copied",
            "copy it again, or save the weights anew",
        ) from None
    with open(path, "rb") as f:
        head = f.read(512)
    if not h5py.is_hdf5(path):
        raise _error(path, _what_it_is(head)) from None
    raise _error(path, f"unreadable HDF5 file ({' '.join(reason.split())})") from None


def weights_layout(path):
    """What kind of weights file `path` is, read from its content, not its name.

    Args:
        path: the file.

    Returns:
        `"keras3"` (the layout of `save_weights` and Keras 3's
        `model.save_weights`), `"legacy"` (the Keras 2 HDF5 layout of the
        original examples) or `"archive"` (a whole-model `.keras` file).

    Raises:
        WeightsError: the file is missing, a folder, not HDF5 (say a PNG or
            a text file), truncated, or otherwise unreadable.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise _error(path, "is a folder, not a weights file", "pass the weights file itself")
    if not os.path.exists(path):
        raise _error(path, "no such file", "check the path")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head in (b"PK\x03\x04", b"PK\x05\x06") and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if _ARCHIVE_WEIGHTS in archive.namelist():
                    return "archive"
    except (OSError, zipfile.BadZipFile) as error:
        raise _error(path, f"cannot be read ({type(error).__name__}: {error})") from None
    with _open_hdf5(path) as f:
        root = f["model_weights"] if "model_weights" in f else f
        return "legacy" if "layer_names" in root.attrs else "keras3"


def is_legacy_h5(path):
    """Whether `path` holds weights in the Keras 2 HDF5 layout.

    Raises:
        WeightsError: as `weights_layout`.
    """
    return weights_layout(path) == "legacy"


def load_weights(model, path):
    """Loads weights into `model` from a Keras 3 or a Keras 2 (legacy) HDF5 file.

    The layout is read from the file's content, not its name, so
    `vae_mlp_mnist.h5` written by the original Keras 2 example and one
    written by `save_weights` both load, and so does a whole-model `.keras`
    file. Before anything is loaded, every variable's shape in the file is
    compared with the model's (`describe_mismatch`).

    Args:
        model: the model to fill, built like the one that saved the file.
        path: the weights file.

    Raises:
        WeightsError: the file is missing, unreadable or does not fit `model`;
            the message names the first layer whose shapes differ.

    Example:

    >>> encoder, decoder, vae = build_mlp_vae()
    >>> load_weights(vae, "vae_mlp_mnist.h5")
    """
    path = os.fspath(path)
    layout = weights_layout(path)
    check_fits(model, path)
    options = {"by_name": True} if layout == "legacy" and _saved_by_name(model, path) else {}
    suffix = {"legacy": ".h5", "keras3": ".weights.h5", "archive": ".keras"}[layout]
    # Keras picks its reader by suffix, so present the file under the suffix
    # that matches its content.
    with tempfile.TemporaryDirectory() as directory:
        alias = os.path.join(directory, "weights" + suffix)
        os.symlink(os.path.abspath(path), alias)
        try:
            with warnings.catch_warnings():
                # A trained file holds the optimizer's state too, which an
                # untrained model cannot take; the weights are what is asked for.
                warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
                (_legacy_target(model) if layout == "legacy" else model).load_weights(
                    alias, **options
                )
        except (ValueError, KeyError, OSError) as error:
            reason = " ".join(str(error).split()[:40]) or type(error).__name__
            raise _error(
                path, f"these weights do not fit model {model.name!r} ({reason})", _REBUILD
            ) from None


def check_fits(model, path):
    """Raises `WeightsError`, naming the first layer that differs, unless `path` fits `model`."""
    mismatch = describe_mismatch(model, path)
    if mismatch:
        raise _error(path, f"these weights do not fit model {model.name!r}: {mismatch}", _REBUILD)


def _legacy_target(model):
    """What a Keras 2 file loads into: the model's encoder and decoder alone.

    Keras 2 files hold their layers' weights and nothing of the VAE itself,
    whose one variable of its own (the KL weight, training state) they have
    no place for; a model made of the two parts takes them as they are.
    """
    import keras

    if not (hasattr(model, "encoder") and hasattr(model, "decoder")):
        return model
    inputs = keras.Input(shape=model.encoder.input.shape[1:])
    return keras.Model(inputs, model.decoder(model.encoder(inputs)[2]), name=model.name)


def _saved_by_name(model, path):
    """Whether every weighted layer of `model` has a namesake in the legacy file.

    The original examples under tf.keras 2 passed encoder tensors to
    `vae.add_loss`, which pulled the encoder's inner layers into `vae`: their
    files list `dense`, `z_mean`, ... beside `encoder` and `decoder`. Keras's
    default legacy reader matches layers by position and would refuse them;
    matching by name loads them, and still fails loudly on any shape mismatch.
    """
    with h5py.File(path, "r") as f:
        saved = set(_legacy_layers(f))
    wanted = {layer.name for layer in model.layers if layer.weights}
    return bool(wanted) and wanted <= saved


# --------------------------------------------------------------------------
# Comparing shapes: the file's, read with h5py, against the model's


def describe_mismatch(model, path):
    """Compares the shapes of the weights in `path` with `model`'s, before loading.

    Args:
        model: a built Keras model.
        path: a weights file of any layout `weights_layout` knows.

    Returns:
        `None` if every variable of the model has a counterpart of the same
        shape in the file; otherwise one line naming the first layer that
        differs and both shapes, e.g. `"layer encoder/z_mean: kernel is
        (512, 50) in the file but (512, 2) in the model (and 4 more
        differences)"`.

    Raises:
        WeightsError: as `weights_layout`, or the file holds none of the
            model's weights (an HDF5 file of some other kind).
    """
    layout = weights_layout(path)
    if layout == "legacy":
        with h5py.File(path, "r") as f:
            differences = _legacy_differences(model, f)
    elif layout == "archive":
        with zipfile.ZipFile(path) as archive, archive.open(_ARCHIVE_WEIGHTS) as member:
            with h5py.File(member, "r") as f:
                differences = _keras3_differences(model, f, path)
    else:
        with h5py.File(path, "r") as f:
            differences = _keras3_differences(model, f, path)
    if not differences:
        return None
    more = len(differences) - 1
    return differences[0] + (f" (and {more} more difference{'s' * (more > 1)})" if more else "")


def _shape(shape):
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _variable_shapes(f):
    """{dataset path: shape} of a Keras 3 weights file, the optimizer's state left out."""
    shapes = {}

    def visit(name, item):
        # Optimizer slots depend on whether it has trained yet; Keras skips them
        # with a warning when they do not fit, and so do we.
        if isinstance(item, h5py.Dataset) and not name.startswith("optimizer/"):
            shapes[name] = tuple(item.shape)

    f.visititems(visit)
    return shapes


def _readable(f, name):
    """`("encoder/z_mean", "0")` for the dataset `encoder/layers/dense_1/vars/0`.

    Keras 3 files name groups by class (`dense_1`) and keep the layer's own
    name in the `name` attribute of the group's `vars`.
    """
    parts = name.split("/")
    container, names, i = parts[:-2], [], 0
    while i < len(container):
        # Each step is a sublayer ("layers/<group>") or an attribute ("encoder").
        i += 2 if container[i] == "layers" and i + 1 < len(container) else 1
        group = f.get("/".join(container[:i]) + "/vars")
        label = group.attrs.get("name", container[i - 1]) if group is not None else container[i - 1]
        names.extend(_decoded([label]))
    return "/".join(names) or "(top level)", parts[-1]


def _own_variable_names(model):
    """{(layer path, index): variable name}, for the variables each layer saves itself."""
    names = {}

    def walk(layer, prefix):
        for sublayer in getattr(layer, "layers", []):
            path = f"{prefix}/{sublayer.name}" if prefix else sublayer.name
            if getattr(sublayer, "layers", None):
                walk(sublayer, path)
            else:
                own = sublayer.trainable_weights + sublayer.non_trainable_weights
                for i, variable in enumerate(own):
                    names[(path, str(i))] = variable.name

    walk(model, "")
    return names


def _keras3_differences(model, f, path):
    # What the model would write, saved the model's own way and read back:
    # the layout rules (group names, order) stay Keras's, not a copy of them.
    with tempfile.TemporaryDirectory() as directory:
        reference = os.path.join(directory, "model.weights.h5")
        model.save_weights(reference)
        with h5py.File(reference, "r") as g:
            expected = _variable_shapes(g)
            labels = {name: _readable(g, name) for name in expected}
    found = _variable_shapes(f)
    if expected and not set(expected) & set(found):
        what = (
            f"holds {len(found)} arrays, none where model {model.name!r} keeps its weights"
            if found
            else "holds no weights at all"
        )
        raise _error(path, f"{what}: it is not a weights file of this kind of model")
    variable_names = _own_variable_names(model)
    # Report in the model's order (encoder before decoder), not h5py's alphabetical one.
    layer_order = {layer: i for i, (layer, _) in enumerate(variable_names)}

    def label(layer, index):
        return f"layer {layer}: {variable_names.get((layer, index), f'variable {index}')}"

    differences = []  # (kind, position, text): shapes first, they say most
    for name, shape in expected.items():
        layer, index = labels[name]
        position = (layer_order.get(layer, len(layer_order)), len(index), index)
        if name not in found:
            differences.append(
                (1, position, f"{label(layer, index)} {_shape(shape)} is missing from the file")
            )
        elif found[name] != shape:
            differences.append(
                (
                    0,
                    position,
                    f"{label(layer, index)} is {_shape(found[name])} "
                    f"in the file but {_shape(shape)} in the model",
                )
            )
    for name, shape in found.items():
        if name not in expected:
            layer, index = _readable(f, name)
            differences.append(
                (
                    2,
                    (0, 0, name),
                    f"the file has {label(layer, index)} {_shape(shape)}, which the model lacks",
                )
            )
    return [text for _, _, text in sorted(differences)]


def _decoded(names):
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _legacy_layers(f):
    """{layer name: [(weight name, shape), ...]} of a Keras 2 HDF5 file, in file order."""
    root = f["model_weights"] if "model_weights" in f else f
    layers = {}
    for name in _decoded(root.attrs["layer_names"]):
        group = root.get(name)
        weight_names = _decoded(group.attrs.get("weight_names", [])) if group is not None else []
        layers[name] = [(w, tuple(group[w].shape) if w in group else None) for w in weight_names]
    return layers


def _legacy_differences(model, f):
    saved = {name: weights for name, weights in _legacy_layers(f).items() if weights}
    wanted = [layer for layer in model.layers if layer.weights]
    if {layer.name for layer in wanted} <= set(saved):
        # Matched by name, as load_weights does for these files.
        pairs = [(layer, layer.name) for layer in wanted]
    elif len(wanted) == len(saved):
        pairs = list(zip(wanted, saved))  # by position, as Keras's legacy reader
    else:
        return [
            f"the file holds weights for {len(saved)} layers ({', '.join(saved)}), "
            f"the model has {len(wanted)} ({', '.join(layer.name for layer in wanted)})"
        ]
    differences = []
    for layer, name in pairs:
        variables = layer.trainable_weights + layer.non_trainable_weights
        weights = saved[name]
        if len(weights) != len(variables):
            differences.append(
                f"layer {layer.name}: the file holds {len(weights)} weights "
                f"({', '.join(w for w, _ in weights[:4])}{', ...' * (len(weights) > 4)}), "
                f"the model {len(variables)}"
            )
            continue
        for (weight, shape), variable in zip(weights, variables):
            if shape is None:
                differences.append(
                    f"layer {layer.name}: {weight} is listed but missing from the file"
                )
            elif shape != tuple(variable.shape):
                # Keras 2 named weights by its own layer names ("dense/kernel:0").
                alias = "" if weight.split(":")[0] == variable.path else f", {variable.path}"
                differences.append(
                    f"layer {layer.name}: {weight} is {_shape(shape)} in the file but "
                    f"{_shape(variable.shape)} in the model{alias}"
                )
    return differences
