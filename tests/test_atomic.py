"""Tests of vae.atomic: a saved file is the old one or the new one, even under `kill -9`.

The hard test kills a process that saves weights (and whole models) in a
loop, alternating two different real files, with SIGKILL at random moments,
and checks after every kill that the target is byte for byte one of the two
and loads into a real model. It replays recorded bytes, so it can kill 36
times in seconds; a second test kills Keras's own writer, `model.save_weights`
through `vae.weights.save_weights`, in freshly started processes.
"""

import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from vae.atomic import atomic_write
from vae.models import build_mlp_vae
from vae.weights import WeightsError, load_weights, save_model, save_weights

ROOT = Path(__file__).resolve().parents[1]


def test_replaces_the_target_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    returned = atomic_write(target, lambda path: Path(path).write_bytes(b"new"), suffix=".bin")
    assert target.read_bytes() == b"new" and returned == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_writer_sees_a_temporary_beside_the_target_with_the_suffix(tmp_path):
    seen = []
    atomic_write(
        tmp_path / "vae.h5",
        lambda path: seen.append(path) or Path(path).touch(),
        suffix=".weights.h5",
    )
    (temporary,) = seen
    assert Path(temporary).parent == tmp_path and temporary.endswith(".weights.h5")
    assert Path(temporary).name.startswith(".vae.h5.")


@pytest.mark.parametrize("exception", [OSError, KeyboardInterrupt])
def test_failed_write_keeps_the_old_file_and_removes_the_temporary(exception, tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def broken(path):
        Path(path).write_bytes(b"half")
        raise exception("disk full")

    with pytest.raises(exception):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    target = tmp_path / "shared.bin"
    target.write_bytes(b"old")
    target.chmod(0o644)
    atomic_write(target, lambda path: Path(path).write_bytes(b"new"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    # A new file gets the mode any new file gets (umask), not mkstemp's private 0600.
    fresh = tmp_path / "fresh.bin"
    atomic_write(fresh, lambda path: Path(path).write_bytes(b"new"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


# --------------------------------------------------------------------------
# kill -9 while saving

# The saving processes. A parent imports the package once, then forks, per
# target it is sent on stdin, a child that saves in a loop, alternating two
# files, until the test kills it with SIGKILL; so a kill costs milliseconds,
# not a Python start-up. The children stand a recording in for the Keras
# model: its `save_weights` / `save` write the bytes of a file Keras saved, in
# 64 KiB pieces (Keras's own writer also writes only into the temporary file
# that `vae.atomic` hands it), without TensorFlow, which must not be forked.
SAVER = """
import itertools, os, sys
from vae.weights import save_model, save_weights

kind, first, second = sys.argv[1:4]


class Recording:
    def __init__(self, source):
        with open(source, "rb") as f:
            self.data = f.read()

    def save_weights(self, path):
        with open(path, "wb") as f:
            for start in range(0, len(self.data), 1 << 16):
                f.write(self.data[start:start + (1 << 16)])
                f.flush()

    save = save_weights


models = [Recording(first), Recording(second)]
save = save_weights if kind == "weights" else save_model
print("ready", flush=True)
for line in sys.stdin:
    command, argument = line.split(maxsplit=1)
    if command == "save":
        pid = os.fork()
        if pid == 0:
            for n in itertools.count():
                save(models[n % 2], argument.strip())
        print(pid, flush=True)
    else:  # "reap PID": the test has killed it
        os.waitpid(int(argument), 0)
        print("reaped", flush=True)
"""


def _two_saved_files(tmp_path, kind):
    """Two real files of the same model with different weights, and a loader of them."""
    files = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        _, _, vae = build_mlp_vae()
        path = tmp_path / f"good_{seed}.{'h5' if kind == 'weights' else 'keras'}"
        (save_weights if kind == "weights" else save_model)(vae, path)
        files.append(path)

    def load(path):
        if kind == "weights":
            _, _, vae = build_mlp_vae()
            load_weights(vae, path)
        else:
            vae = keras.models.load_model(path)
        return keras.ops.convert_to_numpy(vae.decoder.get_layer("decoder_output").kernel)

    return files, load


@pytest.mark.parametrize("kind,kills", [("weights", 24), ("model", 12)])
def test_sigkill_while_saving_leaves_a_whole_file(kind, kills, tmp_path):
    files, load = _two_saved_files(tmp_path, kind)
    good = {path.read_bytes(): load(path) for path in files}
    assert len(good) == 2
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / ("vae_mlp_mnist.h5" if kind == "weights" else "vae_mlp.keras")
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER, kind, *map(str, files)],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    def ask(line):
        saver.stdin.write(line + "\n")
        saver.stdin.flush()
        return saver.stdout.readline().strip()

    rng = random.Random(0)
    torn = 0  # kills that landed while a temporary file was being written
    try:
        assert saver.stdout.readline().strip() == "ready"
        for kill in range(kills):
            pid = int(ask(f"save {target}"))
            if kill % 2:  # right into a save in progress, once one shows
                deadline = time.monotonic() + 0.5
                while (
                    not any(".partial" in p.name for p in folder.iterdir())
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.0005)
            else:  # at a random moment of the loop
                time.sleep(rng.uniform(0.0, 0.08))
            os.kill(pid, signal.SIGKILL)  # no cleanup, no finally
            assert ask(f"reap {pid}") == "reaped"
            partials = [p for p in folder.iterdir() if p != target]
            torn += len(partials)
            for partial in partials:  # what a killed save leaves: hidden, beside the target
                assert partial.name.startswith(f".{target.name}.") and ".partial" in partial.name
                partial.unlink()
            if target.exists() and target.read_bytes() not in good:
                pytest.fail(
                    f"torn file after kill {kill}: {target.stat().st_size} bytes, "
                    f"not one of the two good files"
                )
    finally:
        saver.stdin.close()
        saver.wait(timeout=10)
    # Byte for byte one of the good files, and it loads.
    np.testing.assert_array_equal(load(target), good[target.read_bytes()])
    # The test means something only if kills hit saves in progress.
    assert torn >= kills // 2, f"only {torn} of {kills} kills landed mid-save"


# Keras's own writer, killed. A fresh Python per kill (Keras's backends must
# not be forked): it loads two weights files into two models, says "ready",
# then saves them over the target in turn, B, A, B, ..., with the package's
# save_weights, saying "saved" after each, until killed. The target starts as A.
KERAS_SAVER = """
import itertools, sys
from vae.models import build_mlp_vae
from vae.weights import load_weights, save_weights

target, *sources = sys.argv[1:]
models = []
for source in sources:
    _, _, vae = build_mlp_vae()
    load_weights(vae, source)
    models.append(vae)
print("ready", flush=True)
for n in itertools.count(1):
    save_weights(models[n % 2], target)
    print("saved", flush=True)
"""


def test_sigkill_while_keras_saves_weights_leaves_the_old_or_the_new_file(tmp_path):
    # Names Keras's writer takes as they are (.weights.h5), so that a writer
    # straight into the target would work, and be caught here.
    sources, weights = [tmp_path / f"good_{seed}.weights.h5" for seed in (1, 2)], []
    for seed, source in zip((1, 2), sources):
        _, _, vae = build_mlp_vae(seed=seed)
        save_weights(vae, source)
        weights.append([keras.ops.convert_to_numpy(w) for w in vae.trainable_weights])
    assert not np.array_equal(weights[0][0], weights[1][0])

    def which(path):
        """0 or 1: the good file whose weights `path` holds, loaded as a user loads it."""
        _, _, vae = build_mlp_vae()
        try:
            load_weights(vae, path)
        except WeightsError as error:  # a torn file: unreadable, or weights missing
            return f"unloadable ({error})"
        got = [keras.ops.convert_to_numpy(w) for w in vae.trainable_weights]
        for index, expected in enumerate(weights):
            if all(np.array_equal(g, e) for g, e in zip(got, expected)):
                return index
        return "loadable, but with the weights of neither file"

    target = tmp_path / "out" / "vae_mlp_mnist.weights.h5"
    target.parent.mkdir()
    rng = random.Random(0)
    torn = 0  # kills that landed while a temporary file was being written
    for kill in range(6):
        shutil.copyfile(sources[0], target)
        saver = subprocess.Popen(
            [sys.executable, "-c", KERAS_SAVER, str(target), *map(str, sources)],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        completed = 0  # saves that said "saved": save n wrote file n % 2 (save 0 is the copy)
        try:
            assert saver.stdout.readline().strip() == "ready"
            # After 0 to 3 whole saves, a random moment of the next (one takes
            # 25-40 ms: the 3.3 MB file, flushed to disk).
            for _ in range(rng.randrange(4)):
                assert saver.stdout.readline().strip() == "saved"
                completed += 1
            time.sleep(rng.uniform(0.0, 0.03))
        finally:
            saver.kill()  # SIGKILL: no cleanup, no finally
            rest, _ = saver.communicate(timeout=60)
        assert saver.returncode == -signal.SIGKILL
        completed += rest.split().count("saved")
        partials = [p for p in target.parent.iterdir() if p != target]
        found = which(target)
        if found not in (0, 1):
            pytest.fail(f"after kill {kill + 1}, {completed} saves in: the target is {found}")
        if partials:  # killed mid-save: the target is still the last save's file, whole
            assert found == completed % 2, f"kill {kill + 1}: the save in progress showed"
            torn += 1
        # else killed between saves, or between a save's rename and its "saved"
        for partial in partials:  # what a killed save leaves: hidden, beside the target
            assert partial.name.startswith(f".{target.name}.") and ".partial" in partial.name
            partial.unlink()
    # The test means something only if kills hit saves in progress.
    assert torn >= 3, f"only {torn} of 6 kills landed mid-save"
