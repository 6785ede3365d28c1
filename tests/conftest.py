import os
from pathlib import Path

import pytest

# The genuine MNIST files beside the project (../shared/data/mnist), or $VAE_DATA.
MNIST_DIR = Path(os.environ.get("VAE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")


@pytest.fixture(scope="session")
def mnist_dir():
    if not MNIST_DIR.exists():
        pytest.skip(f"real MNIST not found at {MNIST_DIR}; set VAE_DATA to a folder of IDX files")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist_flat(mnist_dir):
    from vae.data import load_mnist

    return load_mnist(mnist_dir, flatten=True)
