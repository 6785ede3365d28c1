import os
from pathlib import Path

import pytest

# The genuine MNIST IDX files beside the project; $VAE_DATA, when set, is what
# the tests that only need real digits read instead.
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_DIR = Path(os.environ.get("VAE_DATA") or SHARED_MNIST)


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
