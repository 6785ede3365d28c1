"""PyDataset helpers: classes made on first use (a module imports without Keras), seeded batches."""

import math

import numpy as np


def lazy_py_dataset(namespace, name, base):
    """`base` mixed with ``keras.utils.PyDataset`` as `name`, stored in `namespace`.

    Importing Keras takes seconds that reading data does not need; a module's
    ``__getattr__`` calls this for the name of its PyDataset class.
    """
    import keras

    cls = type(
        name,
        (base, keras.utils.PyDataset),
        {"__module__": namespace["__name__"], "__qualname__": name, "__doc__": base.__doc__},
    )
    namespace[name] = cls  # later look-ups (and pickle) find it directly
    return cls


class ShuffledBatches:
    """Batches of `count` items, in an order reshuffled every epoch from `(seed, epoch)` alone.

    The part that `DynamicBinarization` and `ImageFolder` share: a seeded run
    repeats exactly whatever order or threads Keras reads the batches in.
    Batches read before the first epoch (Keras reads a few to learn their
    shapes) come from "epoch 0".
    """

    def _start_batches(self, count, batch_size, seed, shuffle):
        self._count = int(count)
        self.batch_size = int(batch_size)
        self.seed = np.random.SeedSequence().entropy if seed is None else int(seed)
        self.shuffle = shuffle
        self.epoch = 0  # counted by on_epoch_begin
        self._order = self._order_of(0)

    def __len__(self):
        return math.ceil(self._count / self.batch_size)

    def on_epoch_begin(self):
        self.epoch += 1
        self._order = self._order_of(self.epoch)

    def resume_after(self, epochs):
        """Continues a run that completed `epochs` epochs: Keras's next epoch gets
        the order (and draws) of epoch `epochs + 1`, as in a run never interrupted."""
        self.epoch = int(epochs)

    def _order_of(self, epoch):
        if not self.shuffle:
            return np.arange(self._count)
        return np.random.default_rng([self.seed, epoch]).permutation(self._count)

    def _batch(self, index):
        """The item indices of batch `index`, in this epoch's order."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of a dataset of {len(self)} batches")
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]
