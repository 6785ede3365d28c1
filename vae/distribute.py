"""Data-parallel training over every device, with the backend's own engine.

`data_parallel()` makes the rest of the program train on all local devices:
each step splits the global batch across the devices (replicas), every
replica runs the model on its share, and the gradients are averaged before
one update of the shared weights. Nothing else changes: models built and
compiled afterwards, and `fit(batch_size=...)`, distribute themselves.

On TensorFlow the engine is `tf.distribute.MirroredStrategy`, set as the
program's default strategy; on JAX it is `keras.distribution.DataParallel`,
set as Keras's global distribution. The PyTorch backend of Keras has no
data-parallel engine of its own.

Call it before building the model: the weights and the optimizer's state
must be created by the engine to live on every device. On JAX every batch
must split evenly over the devices (TensorFlow splits uneven ones itself), so
the batch size and the sizes of the training and validation sets should be
multiples of the device count; `end_data_parallel()` then lets the trained
model predict on batches of any size.
"""

import json
import os
import re

import keras
import numpy as np

from vae.pydataset import ShuffledBatches

DISTRIBUTED_BACKENDS = ("tensorflow", "jax")

# How long a collective waits for a peer before it fails (a worker that died).
PEER_TIMEOUT_SECONDS = 60


def workers():
    """How many processes train together: the workers of `TF_CONFIG` on TensorFlow,
    JAX's process count on JAX; 1 for a program of its own."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_count()
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", [])) or 1


def is_chief():
    """Whether this process writes the run's files: the only one, or process 0
    (on TensorFlow the `TF_CONFIG` task `chief`, else worker 0)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_index() == 0
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("index", 0) == 0


def join_processes(coordinator=None, num_processes=None, process_id=None):
    """Joins the other processes of a multi-process run; first thing in the program.

    On TensorFlow, with a `TF_CONFIG` naming several workers, sets
    `tf.distribute.MultiWorkerMirroredStrategy` as the program's strategy
    (it must come before TensorFlow runs anything) and returns it. On JAX,
    with a `coordinator` (`HOST:PORT` of process 0), calls
    `keras.distribution.initialize(coordinator, num_processes, process_id)`.
    Either way a collective that waits more than `PEER_TIMEOUT_SECONDS` for a
    peer fails, so a worker that died stops the others instead of leaving
    them waiting.
    """
    backend = keras.backend.backend()
    if backend == "jax" and coordinator is not None:
        keras.distribution.initialize(coordinator, num_processes, process_id)
    if backend != "tensorflow" or workers() == 1:
        return None
    import tensorflow as tf

    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return tf.distribute.get_strategy()

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            # Keras 3's fit averages its scalar logs "along axis 0" across the
            # workers, which fails for a scalar (tensorflow/tensorflow#72388):
            # a scalar's mean over the replicas is the same without the axis.
            if axis == 0 and all(v.shape.rank == 0 for v in self.experimental_local_results(value)):
                axis = None
            return super().reduce(reduce_op, value, axis)

    strategy = MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=PEER_TIMEOUT_SECONDS
        )
    )
    tf.distribute.experimental_set_strategy(strategy)
    return strategy


def lost_worker(error):
    """Which process of the run stopped, when `error` is the engine's news of one,
    else `None`: `"worker N"` from TensorFlow's collectives and heartbeats, the
    peer's address from JAX's (Gloo's), which name no process index."""
    if type(error).__name__ == "JaxRuntimeError":
        peer = re.search(r"Gloo .*\[(\d+\.\d+\.\d+\.\d+)\]:(\d+)", str(error))
        return None if peer is None else f"the worker at {peer.group(1)}:{peer.group(2)}"
    if type(error).__name__ not in ("UnavailableError", "InternalError", "DeadlineExceededError"):
        return None
    task = re.search(r"/job:worker/replica:\d+/task:(\d+)", str(error))
    if task is None:
        return None
    return f"worker {task.group(1)}"


def data_parallel():
    """Trains every model built afterwards data-parallel over all local devices.

    TensorFlow uses the GPUs if there are any, else every logical CPU device
    (one, unless the program split the CPU with
    `tf.config.set_logical_device_configuration` before TensorFlow started);
    JAX uses `keras.distribution.list_devices()`, the GPUs or TPUs if there
    are any, else the CPU devices (several with
    `XLA_FLAGS=--xla_force_host_platform_device_count=N`). With a
    `TF_CONFIG` naming several workers, TensorFlow trains over all of them
    with `MultiWorkerMirroredStrategy` (`join_processes`); call it first
    thing then, before TensorFlow runs anything.

    `batch_size` stays the global batch: each of N devices gets
    `batch_size / N` examples per step, and the loss and metrics are those of
    the whole batch. With the same seed, training gives the losses of one
    device, up to the rounding of sums taken in another order.

    Returns:
        The names of the devices, e.g. `["/device:GPU:0", "/device:GPU:1"]`
        on TensorFlow or `["cpu:0", "cpu:1"]` on JAX.

    Raises:
        ValueError: on a backend without a data-parallel engine (PyTorch).

    Example:

    >>> devices = data_parallel()
    >>> encoder, decoder, vae = build_mlp_vae()   # mirrored on every device
    >>> vae.compile(optimizer="adam")
    >>> vae.fit(x_train, batch_size=256)          # 256 per step, split across the devices
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if workers() > 1:  # first: TensorFlow must not have run anything yet
            join_processes()
            return [f"/job:worker/task:{task}" for task in range(workers())]
        # MirroredStrategy's own default takes a single CPU, whatever the split.
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        # The default strategy of the whole program, so that variables,
        # optimizer state and fit's input pipeline are all created under it.
        tf.distribute.experimental_set_strategy(tf.distribute.MirroredStrategy(devices))
        return devices
    if backend == "jax":
        # Every device of every process. Each process feeds its own share of
        # the batches (`ProcessShare`), so Keras must not shard them again.
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
        )
        return devices
    raise ValueError(
        f"data-parallel training is not supported on the {backend} backend; "
        f"use the {' or '.join(DISTRIBUTED_BACKENDS)} backend"
    )


def end_data_parallel(model=None):
    """Lets the model trained data-parallel predict on batches of any size.

    For the predictions after training (a 30x30 grid of digits, 50 samples):
    on JAX a data-parallel step needs every batch to split evenly over the
    devices, and these do not. Afterwards the weights stay on every device
    and each step runs on the whole batch. With several JAX processes the
    weights span devices that this process cannot reach, so `model`'s are
    copied to its own first device. TensorFlow's strategy splits uneven
    batches itself, so there it changes nothing.
    """
    if keras.backend.backend() != "jax":
        return
    keras.distribution.set_distribution(None)
    if model is not None and workers() > 1:
        for variable in {id(v): v for v in model.variables + model.metrics_variables}.values():
            # The copy is whole: data-parallel weights are the same on every
            # device. Keras has no public way to take a variable off its
            # mesh, and each assignment keeps to the variable's layout.
            value = np.asarray(variable.value)
            variable._layout = None
            variable.assign(value)


class ProcessShare(ShuffledBatches, keras.utils.PyDataset):
    """This process's share of every global batch, for data-parallel training on JAX.

    With N processes, process p feeds rows `p * b / N` to `(p + 1) * b / N`
    of each global batch of b digits, and Keras joins the shares into the
    global batch over the devices of all the processes
    (`jax.make_array_from_process_local_data`). One process feeds all of it.

    `data` is the training input as `fit` takes it: arrays (one, or a tuple
    of the model's inputs), reshuffled every epoch from `(seed, epoch)`
    unless `shuffle=False`, or a PyDataset of global batches, which must
    draw the same batches in every process (a seeded `DynamicBinarization`).
    Every process must pass the same `seed`; `None` takes one from NumPy's
    generator, which `keras.distribution.initialize` seeds alike in all.
    """

    def __init__(self, data, batch_size=None, seed=None, shuffle=True):
        import jax

        super().__init__()
        self.data = data
        self.process, self.processes = jax.process_index(), jax.process_count()
        # A PyDataset brings its own batches; arrays are batched here.
        self._batched = isinstance(data, keras.utils.PyDataset)
        if not self._batched:
            if seed is None and shuffle:
                seed = np.random.randint(2**31)
            self._start_batches(len(keras.tree.flatten(data)[0]), batch_size, seed, shuffle)

    def __len__(self):
        return len(self.data) if self._batched else super().__len__()

    def on_epoch_begin(self):
        if self._batched:
            self.data.on_epoch_begin()
        else:
            super().on_epoch_begin()

    def on_epoch_end(self):
        if self._batched:
            self.data.on_epoch_end()

    def resume_after(self, epochs):
        if self._batched:
            if hasattr(self.data, "resume_after"):
                self.data.resume_after(epochs)
        else:
            super().resume_after(epochs)

    def __getitem__(self, index):
        if self._batched:
            batch = self.data[index]
        else:
            chosen = self._batch(index)
            batch = (keras.tree.map_structure(lambda array: array[chosen], self.data),)
        return keras.tree.map_structure(self._share, batch)

    def _share(self, array):
        size = len(array) // self.processes
        return array[self.process * size : (self.process + 1) * size]


def replica():
    """`(index, count)` of the replica running this code: `(0, 1)` unless distributed.

    Under a `tf.distribute` strategy each replica runs the step on its share
    of the batch, so what the step computes by hand must know it: a loss is
    divided by the count (Keras sums the replicas' gradients and reports the
    sum, and divides its own losses the same way), and random draws must
    differ between replicas. On JAX the step is one program over the whole
    batch, so it is always `(0, 1)`.
    """
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    count = tf.distribute.get_strategy().num_replicas_in_sync
    if context is None or count == 1:  # cross-replica code, or a single device
        return 0, 1
    return context.replica_id_in_sync_group, count
