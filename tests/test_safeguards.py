"""Tests of vae.safeguards through the library API: NaN losses, Ctrl-C, backups and resuming.

The same callbacks run inside the example scripts; tests/test_cli_safety.py
drives those with real signals in real processes.
"""

import json
import signal

import keras
import numpy as np
import pytest

from vae.models import build_mlp_vae
from vae.safeguards import (
    NonFiniteLossError,
    StopOnInterrupt,
    StopOnNonFiniteLoss,
    TrainingBackup,
    TrainingInterrupted,
)
from vae.weights import load_weights

# The README's NaN, Ctrl-C and backup safeguards hold on every backend: CI runs
# these on JAX and PyTorch too (on all three a resumed run without shuffling
# repeats the uninterrupted one exactly; tests/test_cli_safety.py says what
# shuffling changes).
pytestmark = pytest.mark.core

N, BATCH = 400, 100  # 4 batches an epoch


@pytest.fixture(scope="module")
def digits(mnist_flat):
    (x_train, _), _ = mnist_flat
    return x_train[:N]


def _model(seed=0, learning_rate=1e-3):
    keras.utils.set_random_seed(seed)
    encoder, decoder, vae = build_mlp_vae(intermediate_dim=64, seed=seed)
    # Eagerly: a few steps, so tracing would cost more than it saves. The
    # scripts' tests (test_cli_safety.py) run the same callbacks in graph mode.
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate), run_eagerly=True)
    return vae


def _weights(model):
    """The learnt weights (not the KL weight, which training leaves alone)."""
    return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches, self.epochs = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(float(logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


class _At(keras.callbacks.Callback):
    """Calls `action(model)` at the end of batch `batch` (0-based) of epoch `epoch`."""

    def __init__(self, epoch, batch, action):
        super().__init__()
        self.at, self.action, self._epoch = (epoch, batch), action, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self._epoch, batch) == self.at:
            self.action(self.model)


# --------------------------------------------------------------------------
# NaN and infinite losses


def test_nan_in_the_data_stops_at_the_first_bad_batch(digits):
    x = digits.copy()
    x[250] = np.nan  # in the third batch
    vae = _model()
    recorder = _Recorder()
    with pytest.raises(NonFiniteLossError) as caught:
        vae.fit(
            x,
            epochs=2,
            batch_size=BATCH,
            shuffle=False,
            verbose=0,
            callbacks=[StopOnNonFiniteLoss(), recorder],
        )
    error = caught.value
    assert (error.epoch, error.batch) == (1, 3) and np.isnan(error.loss)
    assert "the loss became nan in epoch 1, batch 3" in str(error)
    assert isinstance(error, RuntimeError)  # what Keras's TerminateOnNaN(raise_error=True) raises
    # Callbacks after it never saw the bad batch, nor an epoch end.
    assert len(recorder.batches) == 2 and np.all(np.isfinite(recorder.batches))
    assert recorder.epochs == []


def test_huge_learning_rate_stops_training_and_the_backup_keeps_the_last_good_epoch(
    digits, tmp_path
):
    vae = _model()
    backup = TrainingBackup(tmp_path / "backup")

    def explode(model):  # from the second epoch on, a learning rate no model survives
        model.optimizer.learning_rate.assign(1e10)

    with pytest.raises(NonFiniteLossError) as caught:
        vae.fit(
            digits,
            epochs=5,
            batch_size=BATCH,
            verbose=0,
            callbacks=[StopOnNonFiniteLoss(), backup, _At(0, 3, explode)],
        )
    assert caught.value.epoch == 2
    assert not all(np.isfinite(w).all() for w in _weights(vae))  # ruined in memory ...
    assert backup.completed_epochs() == 1  # ... but the backup holds epoch 1, finite
    restored = _model(seed=1)
    load_weights(restored, backup.weights_path)
    assert all(np.isfinite(w).all() for w in _weights(restored))


def test_infinite_loss_is_caught_too():
    callback = StopOnNonFiniteLoss()
    callback.on_epoch_begin(4)
    with pytest.raises(NonFiniteLossError, match="became inf in epoch 5, batch 8"):
        callback.on_batch_end(7, {"loss": np.float32("inf")})
    callback.on_batch_end(8, {"loss": 3.0})  # finite: nothing happens


# --------------------------------------------------------------------------
# Ctrl-C


def _ctrl_c(model):
    signal.raise_signal(signal.SIGINT)


@pytest.fixture
def ctrl_c_raises():
    """Python's usual Ctrl-C, even where the tests run with SIGINT ignored (started by `cmd &`)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_after_the_current_batch_with_the_weights_reached(digits, ctrl_c_raises):
    vae = _model()
    start = _weights(vae)
    stop = StopOnInterrupt()
    recorder = _Recorder()
    with pytest.raises(TrainingInterrupted) as caught:
        vae.fit(
            digits,
            epochs=3,
            batch_size=BATCH,
            verbose=0,
            callbacks=[recorder, _At(1, 1, _ctrl_c), stop],
        )
    where = caught.value
    assert (where.epoch, where.batches, where.epoch_completed) == (2, 2, False)
    assert str(where) == "interrupted in epoch 2 after 2 batches"
    assert isinstance(where, KeyboardInterrupt) and stop.interrupted
    # Every batch up to the signal was trained and seen, none after it.
    assert int(vae.optimizer.iterations) == 4 + 2 == len(recorder.batches)
    assert recorder.epochs == [0]
    assert not any(np.array_equal(a, b) for a, b in zip(start, _weights(vae)) if a.any())
    # The usual Ctrl-C is back once training stopped.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_validation_stops_once_the_epoch_is_done(ctrl_c_raises):
    stop = StopOnInterrupt()
    stop.on_train_begin()
    try:
        stop.on_epoch_begin(0)
        signal.raise_signal(signal.SIGINT)  # while Keras validates: no batch end comes
        with pytest.raises(TrainingInterrupted) as caught:
            stop.on_epoch_end(0)
    finally:
        stop.restore()
    assert (caught.value.epoch, caught.value.epoch_completed) == (1, True)
    assert str(caught.value) == "interrupted at the end of epoch 1"


def test_second_ctrl_c_is_a_plain_keyboard_interrupt(ctrl_c_raises):
    stop = StopOnInterrupt()
    stop.on_train_begin()
    try:
        signal.raise_signal(signal.SIGINT)  # noted
        assert stop.interrupted
        with pytest.raises(KeyboardInterrupt) as caught:
            signal.raise_signal(signal.SIGINT)  # the impatient second one
        assert not isinstance(caught.value, TrainingInterrupted)
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_process_that_ignores_ctrl_c_goes_on_ignoring_it():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        stop = StopOnInterrupt()
        stop.on_train_begin()
        signal.raise_signal(signal.SIGINT)
        stop.on_train_batch_end(0)  # nothing noted, nothing raised
        assert not stop.interrupted and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        stop.on_train_end()
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------
# Backups: resume exactly, write atomically, delete only their own files


CRASH = "the machine went down"


class _CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(CRASH)


def test_resumed_run_ends_where_an_uninterrupted_one_does(digits, tmp_path):
    def run(backup_dir, crash_at=None):
        vae = _model(seed=3)
        recorder = _Recorder()
        callbacks = [TrainingBackup(backup_dir), recorder]
        if crash_at is None:
            # Meant to finish: any error, after the last batch too, fails the test.
            vae.fit(
                digits, epochs=3, batch_size=BATCH, verbose=0, shuffle=False, callbacks=callbacks
            )
        else:
            # Only the crash itself, not some other RuntimeError (NonFiniteLossError is one).
            with pytest.raises(RuntimeError) as crashed:
                vae.fit(
                    digits,
                    epochs=3,
                    batch_size=BATCH,
                    verbose=0,
                    shuffle=False,
                    callbacks=[*callbacks, _CrashAt(crash_at)],
                )
            assert type(crashed.value) is RuntimeError and str(crashed.value) == CRASH
        return vae, recorder

    uninterrupted, all_losses = run(tmp_path / "a")
    crashed, first_losses = run(tmp_path / "b", crash_at=2)
    backup = TrainingBackup(tmp_path / "b")
    assert len(first_losses.batches) == 8 and backup.completed_epochs() == 2
    with open(tmp_path / "b" / "training_metadata.json") as f:
        metadata = json.load(f)
    seed_state = [
        keras.ops.convert_to_numpy(v).tolist()
        for v in crashed.variables
        if "seed_generator" in v.path
    ]
    assert metadata["epoch"] == 2 and metadata["random_state"] == seed_state and seed_state

    resumed, last_losses = run(tmp_path / "b")  # a new process would build the model anew too
    assert len(last_losses.batches) == 4  # epoch 3 only
    assert int(resumed.optimizer.iterations) == 12  # the optimizer's state came back
    # Equal to the last bit: weights, optimizer state and the sampling layer's random stream.
    assert first_losses.batches + last_losses.batches == all_losses.batches
    for got, expected in zip(_weights(resumed), _weights(uninterrupted)):
        np.testing.assert_array_equal(got, expected)
    # Kept after training (unlike Keras's default): the caller saves its weights, then removes.
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "latest.weights.h5",
        "training_metadata.json",
    ]


def _backed_up(tmp_path):
    """A model and its backup after one (pretended) epoch, without the cost of training."""
    vae = _model()
    backup = TrainingBackup(tmp_path / "backup")
    backup.set_model(vae)
    backup.on_epoch_end(0)
    return vae, backup


def test_failed_backup_write_keeps_the_previous_backup(tmp_path, monkeypatch):
    vae, backup = _backed_up(tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "backup").iterdir()}
    assert backup.completed_epochs() == 1

    def disk_full(filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n and then the disk was full")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vae, "save_weights", disk_full)
    with pytest.raises(OSError, match="No space left"):
        backup.on_epoch_end(1)
    after = {p.name: p.read_bytes() for p in (tmp_path / "backup").iterdir()}
    assert after == before  # same files, same bytes, no temporary left
    assert backup.completed_epochs() == 1


def test_remove_deletes_only_the_backup(tmp_path):
    _, backup = _backed_up(tmp_path)
    (tmp_path / "backup" / "notes.txt").write_text("mine")
    backup.remove()
    assert [p.name for p in (tmp_path / "backup").iterdir()] == ["notes.txt"]
    assert backup.completed_epochs() is None
    (tmp_path / "backup" / "notes.txt").unlink()
    backup.remove()  # nothing left to remove: no error, and the empty folder goes
    assert not (tmp_path / "backup").exists()


def test_backup_keeps_the_kl_weight_and_a_resumed_warmup_goes_on(digits, tmp_path):
    from vae.callbacks import KLWarmup

    def run(epochs, warmup=True):
        keras.utils.set_random_seed(0)
        _, _, vae = build_mlp_vae(intermediate_dim=64, seed=0, beta=2.0)
        vae.compile(optimizer="adam", run_eagerly=True)
        callbacks = [TrainingBackup(tmp_path / "b"), *([KLWarmup(4)] if warmup else [])]
        history = vae.fit(digits, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=callbacks)
        return vae, history.history

    _, first = run(2)
    assert first["kl_weight"] == [0.0, 0.5]
    with open(tmp_path / "b" / "training_metadata.json") as f:
        assert json.load(f)["kl_weight"] == 0.5  # the weight the last epoch trained with
    # Weights files leave the KL weight out; the backup brings it back by itself...
    resumed, _ = run(2, warmup=False)
    assert float(resumed.kl_weight) == 0.5
    # ... and a resumed warm-up goes on from the epoch it reached.
    _, rest = run(4)
    assert rest["kl_weight"] == [1.0, 1.5]
