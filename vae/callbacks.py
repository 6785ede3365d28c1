"""Keras callbacks for watching a VAE train: generation frames and a GIF, the ELBO per epoch,
generated digits in TensorBoard.

They work with any VAE of this package (they read `model.decoder` and
`model.reconstruction`), and with any other model given a decoder.
"""

import os
import time

import keras

from vae.plotting import grid_shape, plot_digits, save_gif, tile, to_pixels


class _FixedLatentDigits(keras.callbacks.Callback):
    """Decodes the same batch of z, drawn once from the prior N(0, I), whenever asked."""

    def __init__(self, decoder=None, n=16, seed=None, logits=None):
        super().__init__()
        self.decoder = decoder
        self.n = n
        self.seed = seed
        self.logits = logits
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
        return to_pixels(keras.ops.convert_to_numpy(decoder(self._z, training=False)), logits)


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

    def __init__(self, folder, decoder=None, n=16, seed=None, logits=None, gif="training.gif",
                 initial=True):
        super().__init__(decoder, n, seed, logits)
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


class EpochSummary(keras.callbacks.Callback):
    """Prints the test-set ELBO and the time of every epoch, as the TensorFlow tutorial does.

    `Epoch 3/100: test-set ELBO -105.21 nats per digit, 14.2 s`. The ELBO is
    `-val_loss`, so it needs `validation_data`; without it the training-set
    ELBO is printed. Each line appears after Keras's own progress line of the
    epoch.

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
        if "val_loss" in logs:
            elbo = f"test-set ELBO {-float(logs['val_loss']):.2f} nats per digit"
        else:
            elbo = f"training ELBO {-float(logs.get('loss', float('nan'))):.2f} nats per digit"
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

    Example:

    >>> logs = "logs/vae_mlp"
    >>> vae.fit(x_train, epochs=50, validation_data=(x_test, None),
    ...         callbacks=[keras.callbacks.TensorBoard(logs), TensorBoardImages(logs, seed=1)])
    """

    tag = "generated_digits"

    def __init__(self, log_dir, decoder=None, n=16, seed=None, logits=None):
        super().__init__(decoder, n, seed, logits)
        try:
            import tensorboard  # noqa: F401  (the implementation of tf.summary.image)
            import tensorflow as tf
        except ImportError as error:
            raise ImportError(f"TensorBoardImages writes with tf.summary, which needs TensorFlow "
                              f"and the tensorboard package ({error}); pip install tensorflow "
                              "tensorboard") from None
        self._tf = tf
        self.log_dir = os.path.join(os.fspath(log_dir), "generated")
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = self._tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        rows, columns = grid_shape(self.n)
        image = tile(self._digits(), rows, columns)[None, :, :, None]  # one grey image
        with self._writer.as_default():
            self._tf.summary.image(self.tag, image, step=epoch)
        self._writer.flush()  # visible in TensorBoard while training goes on

    def on_train_end(self, logs=None):
        self._writer.close()
