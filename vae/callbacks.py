"""Keras callbacks for a VAE in training: KL warm-up; and for watching it, generation frames
and a GIF, the ELBO per epoch, generated digits in TensorBoard.

They work with any VAE of this package (they read `model.decoder` and
`model.reconstruction`), and with any other model given a decoder.
"""

import os
import time

import keras

from vae.plotting import as_images, grid_shape, plot_digits, save_gif, tile, to_pixels


class _FixedLatentDigits(keras.callbacks.Callback):
    """Decodes the same batch of z, drawn once from the prior N(0, I), whenever asked."""

    def __init__(self, decoder=None, n=16, seed=None, logits=None, image_shape=None):
        super().__init__()
        self.decoder = decoder
        self.n = n
        self.seed = seed
        self.logits = logits
        self.image_shape = image_shape
        self._z = None

    def _decoder(self):
        return self.decoder if self.decoder is not None else self.model.decoder

    def _digits(self):
        """The digits that the model, as it is now, decodes from the fixed z: pixels in [0, 1]."""
        decoder = self._decoder()
        if self._z is None:
            # Drawn once, so every picture shows the same points of the latent space.
            self._z = keras.random.normal((self.n, decoder.input_shape[-1]), seed=self.seed)
        logits = self.logits
        if logits is None:
            logits = getattr(self.model, "reconstruction", None) == "bce_logits"
        pixels = to_pixels(keras.ops.convert_to_numpy(decoder(self._z, training=False)), logits)
        return as_images(pixels, self.image_shape)


class GenerationFrames(_FixedLatentDigits):
    """Saves digits decoded from one fixed batch of z after every epoch, then a GIF of them.

    The pictures of the TensorFlow tutorial: the same latent points, drawn
    once from the prior N(0, I), decoded as training goes on,
    `image_at_epoch_0001.png`, `image_at_epoch_0002.png`, ... (and
    `image_at_epoch_0000.png` before training), joined into a GIF when
    training ends.

    Args:
        folder: where the pictures go (created if needed).
        decoder: a model mapping z to digits; by default the trained model's
            `decoder`.
        n: digits per picture (16 make a 4x4 grid).
        seed: integer seed of the fixed z, or `None`.
        logits: whether the decoder outputs logits; by default read from the
            trained model (`reconstruction == "bce_logits"`).
        image_shape: `(height, width, channels)` of a decoder's flat outputs
            (an MLP's), unless they are square and grey.
        gif: file name of the GIF written into `folder` at the end of
            training, or `None` for no GIF.
        initial: also save the untrained model's picture (epoch 0), as the
            tutorial does.

    Attributes:
        frames: the pictures written, in order.
        gif_path: the GIF written, or `None`.

    Example:

    >>> frames = GenerationFrames("cvae", gif="cvae.gif", seed=1)
    >>> vae.fit(x_train, epochs=100, callbacks=[frames])
    >>> frames.frames[-1], frames.gif_path
    """

    def __init__(
        self,
        folder,
        decoder=None,
        n=16,
        seed=None,
        logits=None,
        gif="training.gif",
        initial=True,
        image_shape=None,
    ):
        super().__init__(decoder, n, seed, logits, image_shape)
        self.folder = os.fspath(folder)
        self.gif = gif
        self.initial = initial
        self.frames = []
        self.gif_path = None

    def _save(self, epoch):
        filename = os.path.join(self.folder, f"image_at_epoch_{epoch:04d}.png")
        # The title also keeps every frame distinct: Pillow would merge equal ones.
        plot_digits(self._digits(), filename, title=f"epoch {epoch}")
        self.frames.append(filename)

    def on_train_begin(self, logs=None):
        os.makedirs(self.folder, exist_ok=True)
        if self.initial:
            self._save(0)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1)

    def on_train_end(self, logs=None):
        if self.gif and self.frames:
            self.gif_path = save_gif(self.frames, os.path.join(self.folder, self.gif))


class KLWarmup(keras.callbacks.Callback):
    """Raises the KL term's weight linearly from 0 to the VAE's `beta` over the first epochs.

    KL annealing (Bowman et al. 2016): early in training the KL term pulls
    every `q(z|x)` to the prior before the decoder has learnt to use z; a
    small weight at first lets the latent code carry information. Epoch `i`
    (counted from 0) trains with `beta * min(1, i / epochs)`: 0, `beta /
    epochs`, ..., and `beta` from epoch `epochs + 1` on.

    The weight is the model's non-trainable variable `kl_weight`, set at the
    start of each epoch, so it works inside `fit` on every backend, and a
    resumed run (`TrainingBackup`) continues where it was. `loss` then follows
    the weight; the metric `negative_elbo` stays the unweighted bound.

    Args:
        epochs: epochs of the warm-up; 0 trains with `beta` from the start.

    Example:

    >>> encoder, decoder, vae = build_mlp_vae(beta=4.0)
    >>> vae.compile(optimizer="adam")
    >>> vae.fit(x_train, epochs=50, callbacks=[KLWarmup(10)])
    """

    def __init__(self, epochs):
        super().__init__()
        if epochs < 0:
            raise ValueError(f"KLWarmup needs epochs >= 0, not {epochs}")
        self.epochs = epochs

    def weight(self, epoch, beta):
        """The KL weight of epoch `epoch` (from 0) for a VAE with `beta`."""
        return beta * min(1.0, epoch / self.epochs) if self.epochs else beta

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(self.weight(epoch, self.model.beta))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # into the History and TensorBoard's curves
            logs["kl_weight"] = self.weight(epoch, self.model.beta)


class EpochSummary(keras.callbacks.Callback):
    """Prints the test-set ELBO and the time of every epoch, as the TensorFlow tutorial does.

    `Epoch 3/100: test-set ELBO -105.21 nats per digit, 14.2 s`. The ELBO is
    `-val_negative_elbo` (`-val_loss` for models without that metric), so it
    needs `validation_data`; without it the training-set ELBO is printed.
    Each line appears after Keras's own progress line of the epoch.

    Attributes:
        lines: the lines printed.

    Example:

    >>> vae.fit(x_train, validation_data=(x_test, None), callbacks=[EpochSummary()])
    """

    def __init__(self):
        super().__init__()
        self.lines = []
        self._start = None
        self._pending = None

    def _flush(self):
        # Printed one step late: Keras's progress bar, which runs after the
        # user's callbacks, finishes its line of the epoch in on_epoch_end.
        if self._pending:
            print(self._pending, flush=True)
            self.lines.append(self._pending)
            self._pending = None

    def on_epoch_begin(self, epoch, logs=None):
        self._flush()
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        logs = logs or {}
        # The unweighted bound: with beta or a KL warm-up, `loss` is not the ELBO.
        key = "negative_elbo" if "negative_elbo" in logs else "loss"
        if f"val_{key}" in logs:
            elbo = f"test-set ELBO {-float(logs[f'val_{key}']):.2f} nats per digit"
        else:
            elbo = f"training ELBO {-float(logs.get(key, float('nan'))):.2f} nats per digit"
        epochs = self.params.get("epochs") if self.params else None
        self._pending = f"Epoch {epoch + 1}/{epochs}: {elbo}, {seconds:.1f} s"

    def on_train_end(self, logs=None):
        self._flush()


class TensorBoardImages(_FixedLatentDigits):
    """Writes the digits decoded from one fixed batch of z to TensorBoard after every epoch.

    The `GenerationFrames` picture as a TensorBoard image: one grid (16 digits
    make 4x4) per epoch, at the epoch's step, so the image slider lines up
    with the `epoch_loss` curves of `keras.callbacks.TensorBoard` given the
    same `log_dir`. The image goes to `<log_dir>/generated`, a run beside
    Keras's `train` and `validation`, under the tag `generated_digits`.

    Written with TensorFlow's `tf.summary`, whatever the Keras backend; like
    `keras.callbacks.TensorBoard`, it needs the `tensorboard` package
    (`pip install tensorboard`), which TensorFlow no longer installs.

    Args:
        log_dir: the folder of the TensorBoard logs (created if needed).
        decoder: a model mapping z to digits; by default the trained model's
            `decoder`.
        n: digits per image.
        seed: integer seed of the fixed z, or `None`.
        logits: whether the decoder outputs logits; by default read from the
            trained model (`reconstruction == "bce_logits"`).
        image_shape: `(height, width, channels)` of a decoder's flat outputs
            (an MLP's), unless they are square and grey.

    Example:

    >>> logs = "logs/vae_mlp"
    >>> vae.fit(x_train, epochs=50, validation_data=(x_test, None),
    ...         callbacks=[keras.callbacks.TensorBoard(logs), TensorBoardImages(logs, seed=1)])
    """

    tag = "generated_digits"

    def __init__(self, log_dir, decoder=None, n=16, seed=None, logits=None, image_shape=None):
        super().__init__(decoder, n, seed, logits, image_shape)
        try:
            import tensorboard  # noqa: F401  (the implementation of tf.summary.image)
            import tensorflow as tf
        except ImportError as error:
            raise ImportError(
                f"TensorBoardImages writes with tf.summary, which needs TensorFlow "
                f"and the tensorboard package ({error}); pip install tensorflow "
                "tensorboard"
            ) from None
        self._tf = tf
        self.log_dir = os.path.join(os.fspath(log_dir), "generated")
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = self._tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        rows, columns = grid_shape(self.n)
        image = tile(self._digits(), rows, columns)
        image = image[None, ..., None] if image.ndim == 2 else image[None]  # one grey or RGB image
        with self._writer.as_default():
            self._tf.summary.image(self.tag, image, step=epoch)
        self._writer.flush()  # visible in TensorBoard while training goes on

    def on_train_end(self, logs=None):
        self._writer.close()
