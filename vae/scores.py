"""Per-image scores of how unusual each image is to a trained VAE, and how well they detect.

Every score is a NumPy array with one value per image, and higher means
more unusual (more likely out of distribution):

- `nll`: the importance-sampled negative log-likelihood `-log p(x)` in nats
  (`vae.evaluation.importance_sampled_log_likelihood`).
- `negative_elbo`: `-ELBO`, in nats, from the same draws.
- `reconstruction_error`: the model's reconstruction term (`-log p(x|z)` of
  its decoder: cross-entropy or squared error) at the decoded mean of
  `q(z|x)`, in nats.
- `input_complexity`: Serra et al. 2020's `S(x) = -log2 p(x) / D - L(x) / D`
  in bits per dimension, `L(x)` the length in bits of `x` compressed
  losslessly, by LZMA or PNG ("Input complexity and out-of-distribution
  detection with likelihood-based generative models").
- `likelihood_regret`: Xiao, Yan & Amit 2020's regret, the NLL under the
  trained encoder minus the NLL under a copy of the encoder fine-tuned on
  that one image ("Likelihood Regret: an out-of-distribution detection score
  for variational auto-encoder"). Expensive: opt in.
- `likelihood_ratio`: Ren et al. 2019's `log p(x) - log p_background(x)`,
  negated: the NLL minus the NLL under a background model of the same
  architecture trained on perturbed images ("Likelihood ratios for
  out-of-distribution detection"; train it with `--perturb`).

`ood_metrics` measures a score with scikit-learn: AUROC, AUPRC and the false
positive rate at 95% true positives, the out-of-distribution images the
positive class.

Example:

>>> scores = compute_scores(vae, mnist, ["nll", "input_complexity"], k=1000)
>>> reference_scores = compute_scores(vae, fashion_mnist, ["nll", "input_complexity"], k=1000)
>>> ood_metrics(reference_scores["input_complexity"], scores["input_complexity"])
{'auroc': 0.9955, 'auprc': 0.9952, 'fpr95': 0.0268}   # benchmarks/results/ood_fashion_mnist.json
"""

import io
import lzma
import math
import time
import warnings

import keras
import numpy as np

from vae.evaluation import PASSES_PER_STEP, importance_sampled_log_likelihood
from vae.losses import reconstruction_loss

__all__ = [
    "SCORES",
    "COMPRESSORS",
    "compute_scores",
    "compressed_bits",
    "input_complexity",
    "latent_codes",
    "likelihood_ratio",
    "likelihood_regret",
    "negative_elbo",
    "nll",
    "ood_metrics",
    "reconstruction_error",
    "threshold",
]

SCORES = (
    "nll",
    "negative_elbo",
    "reconstruction_error",
    "input_complexity",
    "likelihood_regret",
    "likelihood_ratio",
)


def _images(x):
    return np.asarray(x, dtype=np.float32)


def nll(vae, x, k=1000, batch_size=PASSES_PER_STEP, seed=None, verbose=0):
    """`-log p(x)` of every image in nats, importance sampled with `k` draws (`vae.evaluation`)."""
    return -importance_sampled_log_likelihood(
        vae, _images(x), k=k, batch_size=batch_size, seed=seed, verbose=verbose
    )


def negative_elbo(vae, x, samples=1, batch_size=PASSES_PER_STEP, seed=None, verbose=0):
    """`-ELBO` of every image in nats: the VAE's loss, per image."""
    _, elbo = importance_sampled_log_likelihood(
        vae,
        _images(x),
        k=samples,
        batch_size=batch_size,
        seed=seed,
        verbose=verbose,
        return_elbo=True,
    )
    return -elbo


def latent_codes(vae, x, batch_size=1000):
    """The mean of `q(z|x)` of every image, `(n, latent_dim)`: the images' embeddings."""
    z_mean, _, _ = vae.encoder.predict(_images(x), batch_size=batch_size, verbose=0)
    return np.asarray(z_mean, dtype=np.float32)


def reconstruction_error(vae, x, batch_size=1000):
    """The reconstruction term of every image at the decoded mean of `q(z|x)`, in nats.

    Cross-entropy for the Bernoulli models, squared error summed over pixels
    for `"mse"`: the model's own `reconstruction_loss` with `z = z_mean`.
    """
    x = _images(x)
    decoded = vae.decoder.predict(
        latent_codes(vae, x, batch_size), batch_size=batch_size, verbose=0
    )
    return keras.ops.convert_to_numpy(
        reconstruction_loss(x, np.asarray(decoded, np.float32), vae.reconstruction)
    ).astype(np.float64)


# Lossless compressors for L(x): LZMA of the raw pixels (the standard
# library's strongest), and PNG as Serra et al. used it (Pillow's best
# compression). LZMA is the default: on Fashion-MNIST against MNIST
# (benchmarks/ood.py, all 10,000 test images of each) input complexity
# reached AUROC 0.9955 with it and 0.9492 with PNG, which spends some 70
# bytes of chunks on every image (73 on a black 28x28 one).
COMPRESSORS = ("lzma", "png")


def _png_bytes(pixels):
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    image.save(buffer, format="PNG", optimize=True, compress_level=9)
    return buffer.getbuffer().nbytes


def compressed_bits(x, compressor="lzma"):
    """The length in bits of every image compressed losslessly, as 8-bit pixels.

    Args:
        x: images in [0, 1], `(n, h, w, c)` (flat rows of 784 count as 28x28x1).
        compressor: `"lzma"` (the raw pixels, preset 9 | extreme with a 1 MiB
            window, raw format: no header) or `"png"` (Pillow, `optimize=True`,
            `compress_level=9`).

    Returns:
        A float64 array of shape `(n,)`.
    """
    if compressor not in COMPRESSORS:
        raise ValueError(f"unknown compressor {compressor!r}: use one of {', '.join(COMPRESSORS)}")
    x = _images(x)
    if x.ndim == 2:  # an MLP's flat digits
        side = math.isqrt(x.shape[1])
        x = x.reshape(len(x), side, side, 1)
    pixels = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
    # A 1 MiB window holds a 256x256 RGB image whole; the preset's 64 MiB,
    # allocated anew for every image, made each call 250 times slower.
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 20}]
    lengths = [
        _png_bytes(p)
        if compressor == "png"
        else len(lzma.compress(p.tobytes(), format=lzma.FORMAT_RAW, filters=filters))
        for p in pixels
    ]
    return 8.0 * np.asarray(lengths, dtype=np.float64)


def input_complexity(vae, x, nll_nats=None, compressor="lzma", k=1000, seed=None, verbose=0):
    """Serra et al.'s `S(x) = -log2 p(x) / D - L(x) / D`, in bits per dimension.

    Args:
        vae: the model.
        x: the images.
        nll_nats: their `nll` if already computed (else computed with `k` draws).
        compressor: one of `COMPRESSORS`, for `L(x)`.
    """
    x = _images(x)
    if nll_nats is None:
        nll_nats = nll(vae, x, k=k, seed=seed, verbose=verbose)
    dimensions = math.prod(x.shape[1:])
    return (np.asarray(nll_nats) / math.log(2) - compressed_bits(x, compressor)) / dimensions


def likelihood_ratio(vae, background, x, k=1000, seed=None, verbose=0, nll_nats=None):
    """`-(log p(x) - log p_background(x))`: the NLL minus the background model's, in nats.

    Args:
        background: a model of the same architecture trained on perturbed
            images (`--perturb`): it learns the images' background statistics,
            which the ratio cancels.
        nll_nats: the images' `nll` under `vae` if already computed.
    """
    x = _images(x)
    if nll_nats is None:
        nll_nats = nll(vae, x, k=k, seed=seed, verbose=verbose)
    return np.asarray(nll_nats) - nll(background, x, k=k, seed=seed, verbose=verbose)


# Xiao et al.'s recipe (their compute_LR.py): Adam with learning rate 2e-4,
# betas (0.9, 0.999) and weight decay 5e-5, 100 steps on the image's
# one-draw negative ELBO, the decoder fixed; NLL before and after with the
# same number of importance samples (they use 1,000).
REGRET_STEPS = 100
REGRET_LEARNING_RATE = 2e-4
REGRET_WEIGHT_DECAY = 5e-5
# Images fine-tuned side by side on JAX (one vmapped call; measured alike from 1 to 50).
REGRET_GROUP = 16


class _Regret:
    """A copy of a VAE whose encoder is fine-tuned on one image at a time, compiled once."""

    def __init__(self, vae, steps, learning_rate, weight_decay):
        from vae.models import VAE

        encoder = keras.models.clone_model(vae.encoder)
        decoder = keras.models.clone_model(vae.decoder)
        decoder.set_weights(vae.decoder.get_weights())
        decoder.trainable = False  # the recipe fine-tunes the encoder alone
        self.trained = vae.encoder.get_weights()
        self.copy = VAE(encoder, decoder, loss=vae.reconstruction, name="regret_copy")
        self.copy.build((None, *vae.encoder.input.shape[1:]))
        # Keras's weight decay is decoupled (AdamW), the recipe's PyTorch one
        # adds 5e-5 * w to the gradient: at this rate over 100 steps both
        # move a weight by less than 1e-6 of itself.
        self.optimizer = keras.optimizers.Adam(
            learning_rate, beta_1=0.9, beta_2=0.999, weight_decay=weight_decay
        )
        # All steps in one call of the compiled function (PyTorch's trainer
        # takes one step a call).
        single = keras.backend.backend() == "torch"
        self.copy.compile(optimizer=self.optimizer, steps_per_execution=1 if single else steps)
        self.optimizer.build(self.copy.trainable_variables)
        # Its state before any step (zero moments, step 0, the learning
        # rate), restored for every image.
        self.fresh = [keras.ops.convert_to_numpy(v) for v in self.optimizer.variables]
        self.steps = steps

    def fine_tune(self, image):
        self.copy.encoder.set_weights(self.trained)
        for variable, value in zip(self.optimizer.variables, self.fresh):
            variable.assign(value)
        batch = np.repeat(image[None], self.steps, axis=0)
        self.copy.fit(batch, batch_size=1, epochs=1, shuffle=False, verbose=0)
        return self.copy


def _fine_tuned_nll_vectorised(vae, x, k, steps, learning_rate, weight_decay, seed, progress):
    """The NLL after fine-tuning, on JAX: one encoder copy per image, `jax.vmap`ped over images.

    The same recipe as `_Regret`, with Adam written out as PyTorch's (the
    recipe's): its weight decay adds `weight_decay * w` to the gradient.
    """
    import jax
    from jax import numpy as jnp

    from vae.evaluation import log_importance_weights
    from vae.losses import kl_divergence

    encoder, decoder, loss = vae.encoder, vae.decoder, vae.reconstruction
    trained = [v.value for v in encoder.trainable_variables]
    fixed = [v.value for v in encoder.non_trainable_variables]
    latent_dim = decoder.input_shape[-1]
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-8

    def encode(weights, image):
        (z_mean, z_log_var, _), _ = encoder.stateless_call(weights, fixed, image[None])
        return z_mean, z_log_var

    def negative_elbo(weights, image, noise):
        z_mean, z_log_var = encode(weights, image)
        z = z_mean + jnp.exp(0.5 * z_log_var) * noise
        return (
            reconstruction_loss(image[None], decoder(z), loss) + kl_divergence(z_mean, z_log_var)
        )[0]

    def fine_tune(image, key):
        def step(t, state):
            weights, m, v, key = state
            key, draw = jax.random.split(key)
            gradients = jax.grad(negative_elbo)(
                weights, image, jax.random.normal(draw, (1, latent_dim))
            )
            gradients = [g + weight_decay * w for g, w in zip(gradients, weights)]
            m = [beta_1 * a + (1 - beta_1) * g for a, g in zip(m, gradients)]
            v = [beta_2 * a + (1 - beta_2) * g * g for a, g in zip(v, gradients)]
            correction_1, correction_2 = 1 - beta_1 ** (t + 1), 1 - beta_2 ** (t + 1)
            weights = [
                w - learning_rate * (a / correction_1) / (jnp.sqrt(b / correction_2) + epsilon)
                for w, a, b in zip(weights, m, v)
            ]
            return weights, m, v, key

        zeros = [jnp.zeros_like(w) for w in trained]
        weights, _, _, _ = jax.lax.fori_loop(0, steps, step, (trained, zeros, zeros, key))
        return encode(weights, image)

    def nll_after(image, z_mean, z_log_var, key):
        noise = jax.random.normal(key, (1, k, latent_dim))
        log_weights, _, _ = log_importance_weights(
            decoder, loss, image[None], z_mean, z_log_var, noise
        )
        return jnp.log(k) - jax.nn.logsumexp(log_weights[0])

    fine_tune_all, nll_all = jax.jit(jax.vmap(fine_tune)), jax.jit(jax.vmap(nll_after))
    keys = jax.random.split(jax.random.key(0 if seed is None else seed), (len(x), 2))
    # REGRET_GROUP images fine-tuned side by side; their NLLs at
    # PASSES_PER_STEP decoder passes at once, as the NLL scan.
    per_call = max(1, PASSES_PER_STEP // k)
    after = np.empty(len(x))
    for start in range(0, len(x), REGRET_GROUP):
        images = x[start : start + REGRET_GROUP]
        z_mean, z_log_var = fine_tune_all(images, keys[start : start + REGRET_GROUP, 0])
        for i in range(0, len(images), per_call):
            j = slice(i, i + per_call)
            after[start + i : start + i + len(images[j])] = np.asarray(
                nll_all(
                    images[j], z_mean[j], z_log_var[j], keys[start : start + REGRET_GROUP, 1][j]
                )
            )
        progress.add(len(images))
    return after


def likelihood_regret(
    vae,
    x,
    k=1000,
    steps=REGRET_STEPS,
    learning_rate=REGRET_LEARNING_RATE,
    weight_decay=REGRET_WEIGHT_DECAY,
    seed=None,
    verbose=1,
    nll_nats=None,
):
    """Xiao et al.'s likelihood regret of every image, in nats: NLL before minus after.

    For each image, a copy of the encoder is fine-tuned on that image alone
    (`steps` Adam steps on its negative ELBO, the decoder fixed) and the NLL
    is estimated again with `k` draws from the fine-tuned encoder. An image
    like the training images gains little: the trained encoder already
    serves it well. The regret is at least 0 up to sampling noise.

    Args:
        vae: the model (unchanged: a copy is fine-tuned).
        x: the images.
        k: importance samples per NLL estimate.
        steps, learning_rate, weight_decay: the fine-tuning (Xiao et al.'s).
        seed: seed of the draws.
        verbose: 1 shows a progress bar with the time left.
        nll_nats: the images' `nll` under the trained encoder, if computed.

    Returns:
        A float64 array of shape `(n,)`.
    """
    x = _images(x)
    if nll_nats is None:
        nll_nats = nll(vae, x, k=k, seed=seed)
    progress = keras.utils.Progbar(len(x), verbose=verbose, unit_name="image")
    if keras.backend.backend() == "jax":
        after = _fine_tuned_nll_vectorised(
            vae, x, k, steps, learning_rate, weight_decay, seed, progress
        )
        return np.asarray(nll_nats) - after
    # Elsewhere one image at a time, its steps in one compiled call.
    regret = _Regret(vae, steps, learning_rate, weight_decay)
    after = np.empty(len(x))
    for i, image in enumerate(x):
        fine_tuned = regret.fine_tune(image)
        after[i] = nll(
            fine_tuned, image[None], k=k, batch_size=k, seed=None if seed is None else seed + i
        )[0]
        progress.add(1)
    return np.asarray(nll_nats) - after


def compute_scores(
    vae,
    x,
    names=("nll", "negative_elbo", "reconstruction_error", "input_complexity"),
    k=1000,
    background=None,
    compressor="lzma",
    seed=None,
    verbose=1,
    timings=None,
):
    """The scores `names` of every image, sharing the work between them.

    One importance-sampling scan gives `nll`, `negative_elbo` and the
    likelihood behind `input_complexity`, `likelihood_ratio` and
    `likelihood_regret`.

    Args:
        vae: the model.
        x: the images, as the encoder takes them (binarized for a
            Bernoulli model, see `vae.data.binarize`).
        names: scores among `SCORES`.
        k: importance samples per image.
        background: the background model of `likelihood_ratio`.
        compressor: `input_complexity`'s compressor.
        seed: seed of the draws: the same seed, the same scores.
        verbose: 1 shows progress bars.
        timings: a dict to fill with the seconds each score took (the shared
            scan counted under `nll`).

    Returns:
        `{name: float64 array (n,)}`, in the order of `names`.

    Raises:
        ValueError: an unknown score, or `likelihood_ratio` without a background.
    """
    unknown = [name for name in names if name not in SCORES]
    if unknown:
        raise ValueError(f"unknown score {unknown[0]!r}: use {', '.join(SCORES)}")
    if "likelihood_ratio" in names and background is None:
        raise ValueError("likelihood_ratio needs a background model (--background WEIGHTS)")
    x = _images(x)
    timings = {} if timings is None else timings
    scores = {}

    def timed(name, compute):
        started = time.perf_counter()
        scores[name] = compute()
        timings[name] = round(time.perf_counter() - started, 1)

    if set(names) - {"reconstruction_error"}:
        timed(
            "nll",
            lambda: importance_sampled_log_likelihood(
                vae, x, k=k, seed=seed, verbose=verbose, return_elbo=True
            ),
        )
        log_px, elbo = scores["nll"]
        scores["nll"], scores["negative_elbo"] = -log_px, -elbo
        timings["negative_elbo"] = timings["nll"]
    if "reconstruction_error" in names:
        timed("reconstruction_error", lambda: reconstruction_error(vae, x))
    if "input_complexity" in names:
        timed("input_complexity", lambda: input_complexity(vae, x, scores["nll"], compressor))
    if "likelihood_ratio" in names:
        timed(
            "likelihood_ratio",
            lambda: likelihood_ratio(
                vae, background, x, k=k, seed=seed, verbose=verbose, nll_nats=scores["nll"]
            ),
        )
    if "likelihood_regret" in names:
        timed(
            "likelihood_regret",
            lambda: likelihood_regret(
                vae, x, k=k, seed=seed, verbose=verbose, nll_nats=scores["nll"]
            ),
        )
    for name in set(timings) - set(names):
        del timings[name]
    return {name: scores[name] for name in names}


def threshold(reference, false_positive_rate):
    """The score above which a fraction `false_positive_rate` of the reference images lie."""
    return float(np.quantile(np.asarray(reference, np.float64), 1.0 - false_positive_rate))


def ood_metrics(reference, scores):
    """How well a score tells `scores`' images (out of distribution) from `reference`'s.

    Args:
        reference: the score of in-distribution images (the negatives).
        scores: the score of the images to flag (the positives).

    Returns:
        `{"auroc", "auprc", "fpr95"}`: scikit-learn's area under the ROC
        curve, its average precision, and the false positive rate at the
        first threshold with at least 95% true positives.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    values = np.concatenate([reference, scores]).astype(np.float64)
    if not np.all(np.isfinite(values)):
        warnings.warn(
            "some scores are not finite; they are ranked as the most unusual", stacklevel=2
        )
        values = np.nan_to_num(
            values, nan=np.inf, posinf=np.finfo(np.float64).max, neginf=np.finfo(np.float64).min
        )
    labels = np.concatenate([np.zeros(len(reference)), np.ones(len(scores))])
    fpr, tpr, _ = roc_curve(labels, values)
    return {
        "auroc": float(roc_auc_score(labels, values)),
        "auprc": float(average_precision_score(labels, values)),
        "fpr95": float(fpr[np.searchsorted(tpr, 0.95)]),
    }
