"""Keras 3 variational autoencoders: the classic Keras and TensorFlow MNIST examples, done right.

>>> from vae import build_mlp_vae
>>> encoder, decoder, vae = build_mlp_vae()
"""

import importlib

# Public name -> module. Imported on first use, so `import vae.cli` can read
# flags (and pick a Keras backend) before Keras itself is imported.
_PUBLIC = {
    "sampling": "vae.layers",
    "Sampling": "vae.layers",
    "reconstruction_loss": "vae.losses",
    "kl_divergence": "vae.losses",
    "VAE": "vae.models",
    "build_mlp_vae": "vae.models",
    "build_cnn_vae": "vae.models",
    "build_conv_vae": "vae.models",
    "build_image_vae": "vae.models",
    "DiscretizedLogistic": "vae.losses",
    "bits_per_dimension": "vae.losses",
    "ConditionalVAE": "vae.conditional",
    "build_conditional_vae": "vae.conditional",
    "plot_class_grid": "vae.conditional",
    "plot_class_samples": "vae.conditional",
    "load_mnist": "vae.data",
    "DataError": "vae.data",
    "binarize": "vae.data",
    "DynamicBinarization": "vae.data",
    "plot_results": "vae.plotting",
    "plot_samples": "vae.plotting",
    "plot_reconstructions": "vae.plotting",
    "plot_interpolation": "vae.plotting",
    "plot_architecture": "vae.plotting",
    "explore": "vae.explorer",
    "load_images": "vae.data",
    "ImageFolder": "vae.data",
    "split_folder": "vae.data",
    "KLWarmup": "vae.callbacks",
    "GenerationFrames": "vae.callbacks",
    "EpochSummary": "vae.callbacks",
    "TensorBoardImages": "vae.callbacks",
    "elbo": "vae.evaluation",
    "importance_sampled_log_likelihood": "vae.evaluation",
    "mean_and_standard_error": "vae.evaluation",
    "compute_scores": "vae.scores",
    "ood_metrics": "vae.scores",
    "save_weights": "vae.weights",
    "load_weights": "vae.weights",
    "load_model": "vae.weights",
    "save_model": "vae.weights",
    "WeightsError": "vae.weights",
    "TrainingBackup": "vae.safeguards",
    "StopOnInterrupt": "vae.safeguards",
    "StopOnNonFiniteLoss": "vae.safeguards",
    "TrainingInterrupted": "vae.safeguards",
    "NonFiniteLossError": "vae.safeguards",
    "data_parallel": "vae.distribute",
    "mixed_precision": "vae.precision",
}

__all__ = sorted(_PUBLIC)
__version__ = "0.1.0"


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'vae' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__():
    return __all__
