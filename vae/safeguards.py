"""Callbacks that keep training's work safe: checkpoints to resume from, Ctrl-C, NaN losses.

Each is a Keras callback built on Keras's own (`BackupAndRestore`,
`TerminateOnNaN`), for `vae.fit(..., callbacks=[...])`:

- `TrainingBackup` saves the training state at the end of every epoch, so an
  interrupted run continues from its last completed epoch, with the optimizer
  state and random streams, to the same losses as a run never interrupted.
- `StopOnInterrupt` turns Ctrl-C into a clean stop after the current batch
  (`TrainingInterrupted`), so the weights reached so far can be saved.
- `StopOnNonFiniteLoss` stops at the first NaN or infinite loss
  (`NonFiniteLossError`), before anything saves the ruined weights.

Both stops raise instead of ending `fit` normally: `on_epoch_end` and
`on_train_end` then never run, so a backup keeps the last good epoch instead
of recording a half one.

Example:

>>> backup = TrainingBackup("checkpoints/vae_mlp")
>>> vae.fit(x_train, epochs=50, callbacks=[StopOnNonFiniteLoss(), backup, StopOnInterrupt()])
>>> save_weights(vae, "vae_mlp_mnist.h5")
>>> backup.remove()
"""

import json
import os
import signal
import threading

import keras
import numpy as np

from vae.atomic import atomic_write

__all__ = [
    "NonFiniteLossError",
    "StopOnInterrupt",
    "StopOnNonFiniteLoss",
    "TrainingBackup",
    "TrainingInterrupted",
]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite.

    Attributes:
        epoch: the epoch it happened in, counted from 1.
        batch: the batch of that epoch, counted from 1.
        loss: the loss reported, `nan`, `inf` or `-inf`.
    """

    def __init__(self, epoch, batch, loss):
        super().__init__(
            f"the loss became {loss} in epoch {epoch}, batch {batch}; training stopped there"
        )
        self.epoch, self.batch, self.loss = epoch, batch, loss


class StopOnNonFiniteLoss(keras.callbacks.TerminateOnNaN):
    """Keras's `TerminateOnNaN(raise_error=True)`, raising `NonFiniteLossError`.

    Raising, rather than Keras's default of ending `fit` quietly, means the
    caller cannot mistake the NaN weights for a result and save them, and
    other callbacks (a `TrainingBackup`) never record the epoch. Put it first
    in the list, so it runs before the callbacks that would use the loss.

    Example:

    >>> try:
    ...     vae.fit(x_train, epochs=50, callbacks=[StopOnNonFiniteLoss()])
    ... except NonFiniteLossError as error:
    ...     print(error)  # the loss became nan in epoch 3, batch 17; ...
    """

    def __init__(self):
        super().__init__(raise_error=True)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError as error:
            loss = float((logs or {}).get("loss", float("nan")))
            raise NonFiniteLossError(self._epoch + 1, batch + 1, loss) from error


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training at a batch boundary; the model holds the weights reached.

    A `KeyboardInterrupt`, so that code not expecting it stops as Ctrl-C
    always stops it.

    Attributes:
        epoch: the epoch stopped in, counted from 1.
        batches: the batches of that epoch completed.
        epoch_completed: whether that epoch finished (the signal came during
            its validation).
    """

    def __init__(self, epoch, batches, epoch_completed=False):
        where = (
            f"at the end of epoch {epoch}"
            if epoch_completed
            else f"in epoch {epoch} after {batches} batch{'es' * (batches != 1)}"
        )
        super().__init__(f"interrupted {where}")
        self.epoch, self.batches, self.epoch_completed = epoch, batches, epoch_completed


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) stops training after the current batch by raising `TrainingInterrupted`.

    Without it, Ctrl-C raises wherever Python happens to be, possibly in the
    middle of Keras's bookkeeping. With it, the signal is noted, the batch in
    progress finishes (with `steps_per_execution` above 1, the call's batches),
    and `TrainingInterrupted` is raised from the batch's end. A second Ctrl-C
    is the usual `KeyboardInterrupt`, for one who cannot wait. Put it last in
    the list, so the other callbacks see every completed batch and epoch first.

    The handler is installed when training starts and put back when it ends
    or stops; call `restore()` (idempotent) after `fit` if it may have ended
    with another exception. It does nothing outside the main thread (only it
    can handle signals), nor in a process that ignores SIGINT.

    Attributes:
        interrupted: whether Ctrl-C was pressed during training.

    Example:

    >>> stop = StopOnInterrupt()
    >>> try:
    ...     vae.fit(x_train, epochs=50, callbacks=[stop])
    ... except TrainingInterrupted as where:
    ...     save_weights(vae, "vae_mlp_mnist.h5")
    ... finally:
    ...     stop.restore()
    """

    def __init__(self):
        super().__init__()
        self.interrupted = False
        self._previous = None
        self._epoch = 0

    def _handle(self, signum, frame):
        self.interrupted = True
        self.restore()

    def restore(self):
        """Puts back the SIGINT handler that was there before training."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_train_begin(self, logs=None):
        self.interrupted = False
        # Only the main thread may handle signals; and a process told to ignore
        # SIGINT (a background job of a script, say) goes on ignoring it.
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        ):
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.interrupted:
            self.restore()
            raise TrainingInterrupted(self._epoch + 1, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        # Ctrl-C during validation: the epoch is complete (and backed up by a
        # TrainingBackup earlier in the list); stop before the next one.
        if self.interrupted:
            self.restore()
            raise TrainingInterrupted(epoch + 1, None, epoch_completed=True)

    def on_train_end(self, logs=None):
        self.restore()


class TrainingBackup(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore`, safe to kill and exact to resume.

    At the end of every epoch it saves the model's weights, the optimizer's
    state and the epoch to `backup_dir`; a later `fit` with a backup in the
    same folder starts from there. Three things differ from Keras's callback:

    - both files are written atomically (`vae.atomic`), so a run killed while
      saving leaves the previous epoch's backup, never a torn one;
    - the random streams' state (the `Sampling` layer's seed) is saved too,
      so a resumed run draws the same z as one never interrupted and, with
      the same `--seed`, ends at the same loss; and so is a VAE's KL weight
      (`kl_weight`, which weights files leave out);
    - the backup is kept when training ends: `remove()` it once the results
      are saved, so no moment exists when neither is on disk.

    Args:
        backup_dir: a folder for this run's backup alone.
        write_to: a folder to write the backups to instead, after resuming
            from `backup_dir`: for the processes of a multi-process run other
            than the chief, which must save as the chief does (reading some
            variables takes all the processes) but never into its files.

    Example:

    >>> backup = TrainingBackup("checkpoints/vae_mlp")
    >>> vae.fit(x_train, epochs=50, callbacks=[backup])  # run it again after a crash
    >>> save_weights(vae, "vae_mlp_mnist.h5")
    >>> backup.remove()
    """

    def __init__(self, backup_dir, write_to=None):
        super().__init__(os.fspath(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.write_to = write_to

    @property
    def weights_path(self):
        """The backup's weights file (Keras 3 layout, with the optimizer's state)."""
        return self._weights_path

    def completed_epochs(self):
        """The epochs the backup holds, or `None` when there is no backup."""
        try:
            with open(self._training_metadata_path) as f:
                return int(json.load(f)["epoch"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # there, but unreadable: still a backup, Keras will say what is wrong

    def remove(self):
        """Deletes the backup's files, and its folder if nothing else is in it."""
        for path in (self._weights_path, self._training_metadata_path):
            if os.path.exists(path):
                os.remove(path)
        try:
            os.rmdir(self.backup_dir)
        except OSError:
            pass  # not empty or already gone: never delete what is not ours

    def _random_state(self):
        # Variables a layer uses but does not save as weights: the state of
        # its SeedGenerators (model.variables lists them, model.weights not).
        saved = {id(v) for v in self.model.weights}
        return [v for v in self.model.variables if id(v) not in saved]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        try:
            with open(self._training_metadata_path) as f:
                metadata = json.load(f)
        except FileNotFoundError:
            metadata = None
        if self.write_to is not None:  # resumed: from now on, write elsewhere
            self.backup_dir = os.fspath(self.write_to)
            self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
            self._training_metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        if metadata is None:
            return
        if metadata.get("kl_weight") is not None and hasattr(self.model, "kl_weight"):
            self.model.kl_weight.assign(metadata["kl_weight"])
        states = metadata.get("random_state")
        variables = self._random_state()
        if states is not None and len(states) == len(variables):
            for variable, state in zip(variables, states):
                variable.assign(np.asarray(state, dtype=variable.dtype))

    def _save_model(self):
        # Replaces Keras's (private) writer: same files, written atomically,
        # the metadata last, so it never names an epoch whose weights are not there.
        os.makedirs(self.backup_dir, exist_ok=True)
        atomic_write(self._weights_path, self.model.save_weights, suffix=".weights.h5")
        metadata = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "random_state": [keras.ops.convert_to_numpy(v).tolist() for v in self._random_state()],
        }
        if hasattr(self.model, "kl_weight"):
            metadata["kl_weight"] = float(keras.ops.convert_to_numpy(self.model.kl_weight))

        def write(path):
            with open(path, "w") as f:
                json.dump(metadata, f)

        atomic_write(self._training_metadata_path, write)
