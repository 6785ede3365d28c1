import keras
import numpy as np
import pytest

from vae.layers import Sampling, sampling

# Run on every Keras backend (pytest -m core).
pytestmark = pytest.mark.core

MEAN = np.array([1.0, -2.0, 0.0], dtype="float32")
VARIANCE = np.array([0.25, 4.0, 1.0], dtype="float32")
DRAWS = 200_000


def _draws(sample):
    z_mean = np.tile(MEAN, (DRAWS, 1))
    z_log_var = np.tile(np.log(VARIANCE), (DRAWS, 1))
    return keras.ops.convert_to_numpy(sample([z_mean, z_log_var]))


@pytest.mark.parametrize("sample", [sampling, Sampling(seed=3)], ids=["function", "layer"])
def test_draws_have_the_given_mean_and_variance(sample):
    z = _draws(sample)
    assert z.shape == (DRAWS, 3)
    # Five standard errors: a false alarm about once in a million runs.
    np.testing.assert_array_less(np.abs(z.mean(0) - MEAN), 5 * np.sqrt(VARIANCE / DRAWS))
    variance_standard_error = VARIANCE * np.sqrt(2 / (DRAWS - 1))
    np.testing.assert_array_less(np.abs(z.var(0, ddof=1) - VARIANCE), 5 * variance_standard_error)
    # Gaussian, not merely the right two moments: kurtosis of a normal is 3.
    standardized = (z - MEAN) / np.sqrt(VARIANCE)
    np.testing.assert_allclose((standardized**4).mean(0), 3.0, atol=0.1)


def test_equal_seeds_give_equal_draws_and_a_stream_moves_on():
    inputs = [np.zeros((4, 2), "float32"), np.zeros((4, 2), "float32")]
    first, second = Sampling(seed=7), Sampling(seed=7)
    a, b = (keras.ops.convert_to_numpy(layer(inputs)) for layer in (first, second))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, keras.ops.convert_to_numpy(first(inputs)))


def test_sampling_layer_round_trips_through_its_config():
    layer = Sampling(seed=5, name="z")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, Sampling)
    assert (clone.name, clone.seed) == ("z", 5)
