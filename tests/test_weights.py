"""Tests of vae.weights: Keras 3 round trips, legacy Keras 2 files, errors, atomic writes.

The legacy files are written by real Keras 2 (`tf_keras`) running the model
definitions of the original examples, in a subprocess
(`tests/keras2_reference.py`), so that Keras 2 and Keras 3 never share a
process. Those tests are skipped when `tf_keras` or the MNIST files are absent.
"""

import gzip
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import conftest
import h5py
import keras
import numpy as np
import pytest

from vae.models import build_cnn_vae, build_mlp_vae
from vae.weights import (
    WeightsError,
    describe_mismatch,
    is_legacy_h5,
    load_weights,
    save_model,
    save_weights,
    weights_layout,
)

HERE = Path(__file__).resolve().parent
REFERENCE_SCRIPT = HERE / "keras2_reference.py"
IDX_IMAGES = ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")


# The Keras 2 reference script reads IDX files: $VAE_DATA if it is a folder.
MNIST_DIR = conftest.MNIST_DIR if conftest.MNIST_DIR.is_dir() else conftest.SHARED_MNIST
HAVE_MNIST = all(
    (MNIST_DIR / name).is_file() or (MNIST_DIR / (name + ".gz")).is_file() for name in IDX_IMAGES
)
HAVE_TF_KERAS = importlib.util.find_spec("tf_keras") is not None

needs_keras2 = pytest.mark.skipif(
    not HAVE_TF_KERAS,
    reason="tf_keras (Keras 2) is not installed: `pip install tf_keras` to test legacy files",
)
needs_mnist = pytest.mark.skipif(
    not HAVE_MNIST, reason=f"MNIST IDX image files not found in {MNIST_DIR} (set VAE_DATA)"
)

# Keras warns, then raises, when a Keras 3 file does not fit; the raise is what is tested.
pytestmark = pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")

BUILDERS = {"mlp": build_mlp_vae, "cnn": build_cnn_vae}
INPUT_SHAPES = {"mlp": (784,), "cnn": (28, 28, 1)}
ROUND_TRIP_NAMES = ["vae_mlp_mnist.h5", "weights.h5", "x.weights.h5"]


def _inputs(kind, n=8, latent_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, *INPUT_SHAPES[kind])).astype("float32")
    z = rng.standard_normal((n, latent_dim)).astype("float32") * 2.0
    return x, z


def _outputs(encoder, decoder, x, z):
    """`z_mean`, `z_log_var` of `x` and the decoding of `z`, as numpy arrays (no sampling)."""
    z_mean, z_log_var, _ = encoder(x, training=False)
    decoded = decoder(z, training=False)
    return tuple(keras.ops.convert_to_numpy(t) for t in (z_mean, z_log_var, decoded))


def _assert_same_outputs(got, expected):
    for name, g, e in zip(("z_mean", "z_log_var", "decoded"), got, expected):
        np.testing.assert_array_equal(g, e, err_msg=name)


def _assert_differ(got, expected):
    # Guards the round trips against two fresh models that happen to agree.
    assert not all(np.array_equal(g, e) for g, e in zip(got, expected))


def _leftovers(directory, keep):
    return sorted(p.name for p in Path(directory).iterdir() if p.name not in keep)


# --------------------------------------------------------------------------
# (a) Keras 3 round trips


@pytest.mark.core
@pytest.mark.parametrize("name", ROUND_TRIP_NAMES)
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_round_trip_gives_identical_outputs(kind, name, tmp_path):
    x, z = _inputs(kind)
    encoder, decoder, vae = BUILDERS[kind]()
    expected = _outputs(encoder, decoder, x, z)
    path = tmp_path / name
    save_weights(vae, path)

    assert path.is_file()
    assert is_legacy_h5(path) is False  # Keras 3 layout, whatever the suffix
    assert _leftovers(tmp_path, {name}) == []

    encoder2, decoder2, vae2 = BUILDERS[kind]()
    _assert_differ(_outputs(encoder2, decoder2, x, z), expected)
    load_weights(vae2, path)
    _assert_same_outputs(_outputs(encoder2, decoder2, x, z), expected)


@pytest.mark.core
def test_the_kl_weight_is_training_state_not_part_of_weights_files(tmp_path):
    # Files keep the layout they always had: a beta-VAE's file loads into a
    # plain VAE and back, and each keeps its own beta.
    x, z = _inputs("mlp")
    encoder, decoder, vae = build_mlp_vae(beta=4.0)
    vae.kl_weight.assign(2.0)  # as a warm-up leaves it
    save_weights(vae, tmp_path / "beta.h5")
    with h5py.File(tmp_path / "beta.h5") as f:
        stored = []
        f.visititems(
            lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None
        )
    assert len(stored) == len(vae.trainable_weights) == 10
    encoder2, decoder2, plain = build_mlp_vae()
    load_weights(plain, tmp_path / "beta.h5")
    _assert_same_outputs(_outputs(encoder2, decoder2, x, z), _outputs(encoder, decoder, x, z))
    assert float(plain.kl_weight) == plain.beta == 1.0
    save_weights(plain, tmp_path / "plain.h5")
    load_weights(vae, tmp_path / "plain.h5")
    assert float(vae.kl_weight) == 2.0 and vae.beta == 4.0


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_save_weights_accepts_str_path(kind, tmp_path):
    encoder, decoder, vae = BUILDERS[kind]()
    path = str(tmp_path / "vae.h5")
    save_weights(vae, path)
    encoder2, decoder2, vae2 = BUILDERS[kind]()
    load_weights(vae2, path)
    x, z = _inputs(kind)
    _assert_same_outputs(_outputs(encoder2, decoder2, x, z), _outputs(encoder, decoder, x, z))


def test_plain_h5_written_by_save_weights_is_keras3_layout(tmp_path):
    _, _, vae = build_mlp_vae()
    path = tmp_path / "vae_mlp_mnist.h5"
    save_weights(vae, path)
    with h5py.File(path, "r") as f:
        assert "layer_names" not in f.attrs
        assert "model_weights" not in f
    assert is_legacy_h5(path) is False


@pytest.mark.core
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_file_from_keras_save_weights_loads(kind, tmp_path):
    encoder, decoder, vae = BUILDERS[kind]()
    path = tmp_path / "x.weights.h5"
    vae.save_weights(str(path))  # Keras 3 itself, not our helper
    assert is_legacy_h5(path) is False

    x, z = _inputs(kind)
    encoder2, decoder2, vae2 = BUILDERS[kind]()
    load_weights(vae2, path)
    _assert_same_outputs(_outputs(encoder2, decoder2, x, z), _outputs(encoder, decoder, x, z))


@pytest.mark.parametrize("latent_dim", [3, 10])
def test_round_trip_other_latent_dims(latent_dim, tmp_path):
    x, z = _inputs("mlp", latent_dim=latent_dim)
    encoder, decoder, vae = build_mlp_vae(latent_dim=latent_dim)
    path = tmp_path / "vae_mlp_mnist.h5"
    save_weights(vae, path)
    encoder2, decoder2, vae2 = build_mlp_vae(latent_dim=latent_dim)
    load_weights(vae2, path)
    _assert_same_outputs(_outputs(encoder2, decoder2, x, z), _outputs(encoder, decoder, x, z))


# --------------------------------------------------------------------------
# (b) legacy Keras 2 files, written by tf_keras running the original examples


@pytest.fixture(scope="module")
def keras2_files(tmp_path_factory):
    """Runs tests/keras2_reference.py for mlp and cnn (concurrently); {kind: out_dir}.

    The files do not depend on the session's backend, and CI runs the suite
    once per backend: with `VAE_TEST_CACHE` set to a folder, the first
    session keeps them there (under the reference script's hash) and the
    later ones read them.
    """
    if not HAVE_TF_KERAS:
        pytest.skip(
            "tf_keras (Keras 2) is not installed: `pip install tf_keras` to test legacy files"
        )
    if not HAVE_MNIST:
        pytest.skip(f"MNIST IDX image files not found in {MNIST_DIR} (set VAE_DATA)")
    cache = os.environ.get("VAE_TEST_CACHE")
    version = hashlib.sha256(REFERENCE_SCRIPT.read_bytes()).hexdigest()[:12]
    kept = {
        kind: Path(cache) / f"keras2_{kind}_{version}" if cache else None for kind in ("mlp", "cnn")
    }
    if all(path is not None and (path / "reference.npz").is_file() for path in kept.values()):
        return kept
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_USE_LEGACY_KERAS", None)
    runs = {}
    for kind in ("mlp", "cnn"):
        out_dir = tmp_path_factory.mktemp(f"keras2_{kind}")
        command = [
            sys.executable,
            str(REFERENCE_SCRIPT),
            kind,
            str(out_dir),
            "--data",
            str(MNIST_DIR),
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        runs[kind] = (out_dir, process, command)
    failures = []
    for _, process, command in runs.values():
        try:
            output, _ = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            failures.append(f"{' '.join(command)}: timed out\n{output[-3000:]}")
            continue
        if process.returncode != 0:
            failures.append(f"{' '.join(command)}: exit {process.returncode}\n{output[-3000:]}")
    if failures:
        pytest.fail("the Keras 2 reference script failed:\n" + "\n".join(failures))
    for kind, (out_dir, _, _) in runs.items():
        if kept[kind] is not None and not kept[kind].exists():
            # Copied whole, then renamed: a later session never sees half a folder.
            partial = Path(f"{kept[kind]}.{os.getpid()}")
            shutil.copytree(out_dir, partial)
            try:
                partial.rename(kept[kind])
            except OSError:  # another pytest worker kept its copy first
                shutil.rmtree(partial)
    return {kind: out_dir for kind, (out_dir, _, _) in runs.items()}


def _reference(out_dir):
    with np.load(out_dir / "reference.npz") as data:
        return {key: data[key] for key in data.files}


def _assert_matches_keras2(encoder, decoder, reference):
    z_mean, z_log_var, decoded = _outputs(encoder, decoder, reference["x"], reference["z"])
    tolerance = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z_mean, reference["z_mean"], err_msg="z_mean", **tolerance)
    np.testing.assert_allclose(z_log_var, reference["z_log_var"], err_msg="z_log_var", **tolerance)
    np.testing.assert_allclose(decoded, reference["decoded"], err_msg="decoded", **tolerance)


# "tf2": vae_<kind>_mnist.h5 as the original script writes it under TensorFlow 2
# tf.keras (add_loss inserted the encoder's inner layers, so they are saved a second
# time at the top level); "nested": the layout of multi-backend Keras 2.2, with only
# encoder and decoder at the top level.
LEGACY_FILES = [
    pytest.param("vae_{kind}_mnist.h5", id="tf2"),
    pytest.param("vae_{kind}_mnist_nested.h5", id="nested"),
]


@needs_keras2
@needs_mnist
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_keras2_reference_files_are_legacy(kind, keras2_files):
    out_dir = keras2_files[kind]
    for pattern in ("vae_{kind}_mnist.h5", "vae_{kind}_mnist_nested.h5"):
        path = out_dir / pattern.format(kind=kind)
        with h5py.File(path, "r") as f:
            assert "layer_names" in f.attrs
        assert is_legacy_h5(path) is True
    reference = _reference(out_dir)
    assert reference["x"].shape == (64, *INPUT_SHAPES[kind])
    assert reference["z_mean"].shape == reference["z_log_var"].shape == (64, 2)
    assert reference["decoded"].shape == (len(reference["z"]), *INPUT_SHAPES[kind])
    # 1 epoch on real digits: far from the untrained BCE of about 543 nats.
    assert float(reference["loss"]) < 530


# The README's "the original Keras 2 files load on all three" backends: these
# are `core`, so CI runs them on JAX and PyTorch too.
@pytest.mark.core
@needs_keras2
@needs_mnist
@pytest.mark.parametrize("pattern", LEGACY_FILES)
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_legacy_keras2_weights_reproduce_keras2_outputs(kind, pattern, keras2_files):
    out_dir = keras2_files[kind]
    path = out_dir / pattern.format(kind=kind)
    reference = _reference(out_dir)
    encoder, decoder, vae = BUILDERS[kind]()
    assert is_legacy_h5(path) is True
    load_weights(vae, path)
    _assert_matches_keras2(encoder, decoder, reference)


@pytest.mark.core
@needs_keras2
@needs_mnist
@pytest.mark.parametrize("pattern", LEGACY_FILES)
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_legacy_file_under_weights_h5_name_loads(kind, pattern, keras2_files, tmp_path):
    # The layout is decided by the content, not by the name.
    out_dir = keras2_files[kind]
    path = tmp_path / "legacy.weights.h5"
    shutil.copyfile(out_dir / pattern.format(kind=kind), path)
    assert is_legacy_h5(path) is True
    encoder, decoder, vae = BUILDERS[kind]()
    load_weights(vae, path)
    _assert_matches_keras2(encoder, decoder, _reference(out_dir))


@needs_keras2
@needs_mnist
@pytest.mark.parametrize("pattern", LEGACY_FILES)
def test_legacy_mlp_weights_into_cnn_raise(pattern, keras2_files):
    path = keras2_files["mlp"] / pattern.format(kind="mlp")
    _, _, vae = build_cnn_vae()
    with pytest.raises(WeightsError) as info:
        load_weights(vae, path)
    assert str(path) in str(info.value)
    # Which layer, and how it differs, read from the Keras 2 file itself.
    assert "layer encoder: the file holds 6 weights (dense/kernel:0, dense/bias:0" in str(
        info.value
    )
    assert "the model 10" in str(info.value)


@needs_keras2
@needs_mnist
def test_legacy_file_of_other_latent_dim_names_layer_and_shapes(keras2_files, tmp_path):
    # The real Keras 2 file with its z_mean head cut to 3 dimensions, as a
    # latent-3 model would have written it.
    path = tmp_path / "vae_mlp_mnist.h5"
    shutil.copyfile(keras2_files["mlp"] / "vae_mlp_mnist_nested.h5", path)
    with h5py.File(path, "r+") as f:
        kernel = f["encoder/z_mean/kernel:0"][:, :1]
        del f["encoder/z_mean/kernel:0"]
        f["encoder/z_mean/kernel:0"] = np.repeat(kernel, 3, axis=1)
    _, _, vae = build_mlp_vae()
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "layer encoder: z_mean/kernel:0 is (512, 3) in the file but (512, 2) in the model;"
        ),
    ):
        load_weights(vae, path)


@pytest.mark.core
@needs_keras2
@needs_mnist
def test_legacy_load_then_resave_round_trips(keras2_files, tmp_path):
    # Convert a Keras 2 file to the Keras 3 layout under the same kind of name.
    out_dir = keras2_files["mlp"]
    encoder, decoder, vae = build_mlp_vae()
    load_weights(vae, out_dir / "vae_mlp_mnist_nested.h5")
    converted = tmp_path / "vae_mlp_mnist.h5"
    save_weights(vae, converted)
    assert is_legacy_h5(converted) is False
    encoder2, decoder2, vae2 = build_mlp_vae()
    load_weights(vae2, converted)
    _assert_matches_keras2(encoder2, decoder2, _reference(out_dir))


# --------------------------------------------------------------------------
# (c) errors


def test_mlp_weights_into_cnn_raise_with_path(tmp_path):
    _, _, mlp = build_mlp_vae()
    path = tmp_path / "vae_mlp_mnist.h5"
    save_weights(mlp, path)
    _, _, cnn = build_cnn_vae()
    with pytest.raises(WeightsError) as info:
        load_weights(cnn, path)
    assert str(path) in str(info.value)
    assert (
        "layer encoder/encoder_dense: kernel is (784, 512) in the file but (3136, 16) in "
        "the model (and 17 more differences)"
    ) in str(info.value)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_latent_50_weights_into_latent_2_raise_with_path(kind, tmp_path):
    _, _, wide = BUILDERS[kind](latent_dim=50)
    path = tmp_path / f"vae_{kind}_mnist.h5"
    save_weights(wide, path)
    _, _, narrow = BUILDERS[kind](latent_dim=2)
    with pytest.raises(WeightsError) as info:
        load_weights(narrow, path)
    assert str(path) in str(info.value)
    hidden = {"mlp": 512, "cnn": 16}[kind]
    # The first difference in the model's order, with both shapes; one line.
    assert (
        f"layer encoder/z_mean: kernel is ({hidden}, 50) in the file but ({hidden}, 2) "
        "in the model (and 4 more differences)"
    ) in str(info.value)
    assert "\n" not in str(info.value)


def test_legacy_layout_of_other_latent_dim_names_layer_and_shapes(tmp_path):
    # Keras 3's own writer of the Keras 2 layout: always available, unlike tf_keras.
    from keras.src.legacy.saving import legacy_h5_format

    _, _, wide = build_mlp_vae(latent_dim=50)
    path = tmp_path / "vae_mlp_mnist.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, wide)
    assert is_legacy_h5(path)
    _, _, narrow = build_mlp_vae()
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "layer encoder: z_mean/kernel is (512, 50) in the file but (512, 2) in the model "
            "(and 4 more differences)"
        ),
    ):
        load_weights(narrow, path)
    assert describe_mismatch(wide, path) is None


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_matching_weights_have_no_mismatch_even_with_optimizer_state(kind, tmp_path):
    # A trained file holds the optimizer's slots; an untrained model has none yet.
    _, _, trained = BUILDERS[kind]()
    trained.compile(optimizer="adam")
    x, _ = _inputs(kind)
    trained.fit(x, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "trained.h5"
    save_weights(trained, path)
    with h5py.File(path, "r") as f:
        assert "optimizer/vars/2" in f
    _, _, fresh = BUILDERS[kind]()
    fresh.compile(optimizer="adam")
    assert describe_mismatch(fresh, path) is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_weights(fresh, path)
    # No "Skipping variable loading for optimizer" noise for the state it cannot take.
    assert not [w for w in caught if "optimizer" in str(w.message)]


def test_missing_file_raises(tmp_path):
    path = tmp_path / "nowhere" / "vae_mlp_mnist.h5"
    _, _, vae = build_mlp_vae()
    with pytest.raises(WeightsError) as info:
        load_weights(vae, path)
    assert str(path) in str(info.value)
    with pytest.raises(WeightsError):
        is_legacy_h5(path)


def test_directory_raises(tmp_path):
    _, _, vae = build_mlp_vae()
    with pytest.raises(WeightsError) as info:
        load_weights(vae, tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("name", ["vae_mlp_mnist.h5", "notes.weights.h5"])
def test_text_file_raises(name, tmp_path):
    path = tmp_path / name
    path.write_text("these are not weights\n")
    _, _, vae = build_mlp_vae()
    with pytest.raises(WeightsError) as info:
        load_weights(vae, path)
    assert str(path) in str(info.value)
    with pytest.raises(WeightsError):
        is_legacy_h5(path)


def _png(path):
    import matplotlib.pyplot as plt

    plt.imsave(path, np.eye(28), cmap="gray", format="png")


def _truncated(path):
    _, _, vae = build_mlp_vae()
    save_weights(vae, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a model")


NOT_WEIGHTS = {  # case: (maker, words the message must hold)
    "png": (_png, "a PNG image, not an HDF5 weights file"),
    "jpeg": (lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100)), "a JPEG image"),
    "empty": (lambda p: p.write_bytes(b""), "an empty file"),
    "binary": (lambda p: p.write_bytes(bytes(range(256))), "not an HDF5 weights file (it starts"),
    "gzip": (lambda p: p.write_bytes(gzip.compress(b"weights")), "a gzip file"),
    "zip": (_zip, "a zip archive, but not a Keras model"),
    "truncated": (_truncated, "truncated HDF5 file ("),
}


@pytest.mark.parametrize("case", NOT_WEIGHTS)
def test_file_that_is_not_weights_says_what_it_is(case, tmp_path):
    make, words = NOT_WEIGHTS[case]
    path = tmp_path / "vae_mlp_mnist.h5"
    make(path)
    _, _, vae = build_mlp_vae()
    with pytest.raises(WeightsError) as info:
        load_weights(vae, path)
    message = str(info.value)
    assert message.startswith(f"weights: {path}: ") and words in message
    assert "\n" not in message and "; " in message  # the problem, then what to do


def test_truncated_file_says_how_much_is_there(tmp_path):
    path = tmp_path / "vae_mlp_mnist.h5"
    _truncated(path)
    size = path.stat().st_size
    with pytest.raises(WeightsError, match=rf"truncated HDF5 file \({size} of \d+ bytes\)"):
        is_legacy_h5(path)


@pytest.mark.core
def test_whole_model_file_loads_as_weights(tmp_path):
    encoder, decoder, vae = build_mlp_vae()
    path = tmp_path / "vae_mlp.keras"
    save_model(vae, path)
    assert weights_layout(path) == "archive"
    encoder2, decoder2, vae2 = build_mlp_vae()
    load_weights(vae2, path)
    x, z = _inputs("mlp")
    _assert_same_outputs(_outputs(encoder2, decoder2, x, z), _outputs(encoder, decoder, x, z))
    _, _, cnn = build_cnn_vae()
    with pytest.raises(WeightsError, match="layer encoder/encoder_dense: kernel"):
        load_weights(cnn, path)


@pytest.mark.core
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_save_model_round_trips_in_safe_mode_and_writes_atomically(kind, tmp_path, monkeypatch):
    encoder, decoder, vae = BUILDERS[kind]()
    path = tmp_path / "vae.keras"
    save_model(vae, path)
    assert _leftovers(tmp_path, {path.name}) == []
    loaded = keras.models.load_model(path, safe_mode=True)
    x, z = _inputs(kind)
    _assert_same_outputs(
        _outputs(loaded.encoder, loaded.decoder, x, z), _outputs(encoder, decoder, x, z)
    )
    before = path.read_bytes()

    def crash(filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vae, "save", crash)
    with pytest.raises(OSError):
        save_model(vae, path)
    assert path.read_bytes() == before and _leftovers(tmp_path, {path.name}) == []


def test_save_model_wants_a_keras_name(tmp_path):
    _, _, vae = build_mlp_vae()
    with pytest.raises(ValueError, match="ending in .keras"):
        save_model(vae, tmp_path / "vae.h5")
    assert list(tmp_path.iterdir()) == []


def test_empty_hdf5_file_raises(tmp_path):
    # A valid HDF5 file holding no weights must not "load" by leaving the model as it was.
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w"):
        pass
    _, _, vae = build_mlp_vae()
    with pytest.raises(WeightsError) as info:
        load_weights(vae, path)
    assert str(path) in str(info.value)


def test_weights_error_is_value_error():
    assert issubclass(WeightsError, ValueError)


# --------------------------------------------------------------------------
# (d) atomic writes


def test_save_over_existing_file_replaces_it_and_leaves_no_temporary(tmp_path):
    x, z = _inputs("mlp")
    path = tmp_path / "vae_mlp_mnist.h5"
    _, _, first = build_mlp_vae()
    save_weights(first, path)
    encoder, decoder, second = build_mlp_vae()
    save_weights(second, path)
    assert _leftovers(tmp_path, {path.name}) == []

    encoder3, decoder3, third = build_mlp_vae()
    load_weights(third, path)
    _assert_same_outputs(_outputs(encoder3, decoder3, x, z), _outputs(encoder, decoder, x, z))


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_failed_save_keeps_previous_file(exception, tmp_path, monkeypatch):
    x, z = _inputs("mlp")
    path = tmp_path / "vae_mlp_mnist.h5"
    encoder, decoder, good = build_mlp_vae()
    save_weights(good, path)
    before = path.read_bytes()

    _, _, other = build_mlp_vae()
    written = []

    def broken_save_weights(filepath, *args, **kwargs):
        written.append(Path(filepath))
        Path(filepath).write_bytes(b"\x89HDF\r\n\x1a\n half a file")
        raise exception("disk full")

    monkeypatch.setattr(other, "save_weights", broken_save_weights)
    with pytest.raises(exception, match="disk full"):
        save_weights(other, path)

    assert written and written[0] != path  # it wrote beside the target, not over it
    assert written[0].parent == path.parent
    assert path.read_bytes() == before
    assert _leftovers(tmp_path, {path.name}) == []
    encoder2, decoder2, vae2 = build_mlp_vae()
    load_weights(vae2, path)
    _assert_same_outputs(_outputs(encoder2, decoder2, x, z), _outputs(encoder, decoder, x, z))


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    _, _, vae = build_mlp_vae()

    def broken_save_weights(filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"garbage")
        raise OSError("disk full")

    monkeypatch.setattr(vae, "save_weights", broken_save_weights)
    with pytest.raises(OSError):
        save_weights(vae, tmp_path / "vae_mlp_mnist.h5")
    assert list(tmp_path.iterdir()) == []
