import os
import subprocess
from pathlib import Path

import pytest

# The genuine MNIST IDX files beside the project; $VAE_DATA, when set, is what
# the tests that only need real digits read instead.
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_DIR = Path(os.environ.get("VAE_DATA") or SHARED_MNIST)


def _fashion_dir():
    """Where Debian's dataset-fashion-mnist put the IDX files, as dpkg lists them; else None."""
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "dataset-fashion-mnist"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in listing.splitlines():
        if line.endswith("/train-images-idx3-ubyte.gz"):
            return Path(line).parent
    return None


# Genuine Fashion-MNIST, from Debian's dataset-fashion-mnist package; None without it.
FASHION_DIR = _fashion_dir()


@pytest.fixture(scope="session")
def mnist_path():
    """Real digits: the full MNIST files if present, else the sample bundled in the package."""
    if MNIST_DIR.exists():
        return MNIST_DIR
    from vae.data import SAMPLE_PATH

    return SAMPLE_PATH


@pytest.fixture(scope="session")
def mnist_flat(mnist_path):
    from vae.data import load_mnist

    return load_mnist(mnist_path, flatten=True)


@pytest.fixture
def saturated_decoder_loss():
    """The MLP VAE's reconstruction loss on 8 black digits when every decoder logit is 30."""
    import numpy as np

    from vae.models import build_mlp_vae

    def loss():
        _, decoder, vae = build_mlp_vae()
        output = decoder.get_layer("decoder_output")
        kernel, bias = output.get_weights()
        output.set_weights([np.zeros_like(kernel), np.full_like(bias, 30.0)])
        vae.compile(optimizer="adam")
        metrics = vae.evaluate(np.zeros((8, 784), "float32"), verbose=0, return_dict=True)
        return metrics["reconstruction_loss"]

    return loss
