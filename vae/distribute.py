"""Data-parallel training over every local device, with the backend's own engine.

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

import keras

DISTRIBUTED_BACKENDS = ("tensorflow", "jax")


def data_parallel():
    """Trains every model built afterwards data-parallel over all local devices.

    TensorFlow uses the GPUs if there are any, else every logical CPU device
    (one, unless the program split the CPU with
    `tf.config.set_logical_device_configuration` before TensorFlow started);
    JAX uses `keras.distribution.list_devices()`, the GPUs or TPUs if there
    are any, else the CPU devices (several with
    `XLA_FLAGS=--xla_force_host_platform_device_count=N`).

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

        # MirroredStrategy's own default takes a single CPU, whatever the split.
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        # The default strategy of the whole program, so that variables,
        # optimizer state and fit's input pipeline are all created under it.
        tf.distribute.experimental_set_strategy(tf.distribute.MirroredStrategy(devices))
        return devices
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return devices
    raise ValueError(
        f"data-parallel training is not supported on the {backend} backend; "
        f"use the {' or '.join(DISTRIBUTED_BACKENDS)} backend"
    )


def end_data_parallel():
    """Lets the model trained data-parallel predict on batches of any size.

    For the predictions after training (a 30x30 grid of digits, 50 samples):
    on JAX a data-parallel step needs every batch to split evenly over the
    devices, and these do not. Afterwards the weights stay on every device
    and each step runs on the whole batch. TensorFlow's strategy splits
    uneven batches itself, so there it changes nothing.
    """
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)


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
