"""Binary pixels from grey levels: once, or afresh every epoch (:class:`DynamicBinarization`).

A Bernoulli likelihood is a probability only for binary pixels, so
likelihood numbers need binary digits. Two habits: threshold once (the
TensorFlow tutorial), or draw every pixel afresh from its grey level each
epoch ("dynamic", the standard of the published numbers; it also acts as a
regularizer).
"""

import numpy as np

from vae.pydataset import ShuffledBatches, lazy_py_dataset

BINARIZATIONS = ("static", "dynamic")


def _bernoulli(rng, p):
    # A uniform draw in [0, 1) falls below p with probability p: grey level 0
    # stays 0 and 1 stays 1.
    return (rng.random(p.shape, dtype=np.float32) < p).astype(np.float32)


def binarize(x, mode="static", seed=0):
    """Binary digits from grey levels, once.

    Args:
        x: images, float values in [0, 1].
        mode: ``"static"``: 1 where ``x > 0.5`` (the tutorial's threshold),
            else 0. ``"dynamic"``: one Bernoulli draw per pixel, 1 with
            probability ``x``.
        seed: seed of the dynamic draw. The fixed default gives every run the
            same binary test set, so their numbers compare.

    Returns:
        A float32 array of 0s and 1s, of the shape of ``x``.

    Example:

    >>> x_test = binarize(x_test, "dynamic")   # a fixed draw, for evaluation
    """
    x = np.asarray(x, dtype=np.float32)
    if mode == "static":
        return (x > 0.5).astype(np.float32)
    if mode == "dynamic":
        return _bernoulli(np.random.default_rng(seed), x)
    raise ValueError(f"unknown binarization {mode!r}: use one of {', '.join(BINARIZATIONS)}")


class _DynamicBinarization(ShuffledBatches):
    """Batches of ``x`` whose pixels are drawn afresh from their grey levels each epoch.

    A ``keras.utils.PyDataset``: give it to ``fit`` in place of ``x`` (without
    ``batch_size``). Each epoch reshuffles the digits and draws every pixel
    again, 1 with probability its grey level. The draws are a function of
    ``(seed, epoch, batch index)`` alone, so a seeded run repeats exactly
    whatever order or threads Keras reads the batches in.

    Args:
        x: images, float values in [0, 1], shape ``(n, ...)``.
        batch_size: digits per batch (the last batch may be smaller).
        seed: integer seed, or ``None`` for a fresh one.
        shuffle: reshuffle the digits each epoch.
        labels: a conditional model's second input, one row per digit
            (e.g. one-hot labels): batches are then ``(digits, labels)``.
        binarize: draw the pixels from their grey levels (``False`` keeps
            the images as they are, for ``perturb`` alone).
        perturb: the fraction of pixels replaced by noise, drawn afresh in
            every batch: a fair coin's 0 or 1 for binary images, a uniform
            grey level otherwise. Ren et al. 2019's background model
            ("Likelihood ratios for out-of-distribution detection") trains
            on images so perturbed (``vae.scores.likelihood_ratio``).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    Example:

    >>> train = DynamicBinarization(x_train, batch_size=100, seed=1)
    >>> vae.fit(train, epochs=100, validation_data=(binarize(x_test, "dynamic"), None))
    """

    def __init__(
        self,
        x,
        batch_size,
        seed=None,
        shuffle=True,
        labels=None,
        binarize=True,
        perturb=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 <= perturb < 1:
            raise ValueError(f"perturb must be a fraction in [0, 1), not {perturb!r}")
        self.x = np.asarray(x, dtype=np.float32)
        self.binarize = binarize
        self.perturb = float(perturb)
        self._binary_noise = binarize or bool(np.all((self.x == 0) | (self.x == 1)))
        self.labels = None if labels is None else np.asarray(labels)
        self._start_batches(len(self.x), batch_size, seed, shuffle)

    def __getitem__(self, index):
        chosen = self._batch(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        digits = _bernoulli(rng, self.x[chosen]) if self.binarize else self.x[chosen]
        if self.perturb:
            replaced = rng.random(digits.shape, dtype=np.float32) < self.perturb
            noise = rng.random(digits.shape, dtype=np.float32)
            digits = np.where(
                replaced, (noise < 0.5) if self._binary_noise else noise, digits
            ).astype(np.float32)
        return ((digits, self.labels[chosen]),) if self.labels is not None else (digits,)


def __getattr__(name):
    if name == "DynamicBinarization":
        return lazy_py_dataset(globals(), name, _DynamicBinarization)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
