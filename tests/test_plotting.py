import keras
import numpy as np
import pytest
from PIL import Image

from vae.models import build_cnn_vae, build_mlp_vae
from vae.plotting import decode_grid, plot_architecture, plot_results


def _coordinate_decoder(latent_dim):
    """A decoder whose pixel 0 shows z[0], pixel 1 shows z[1] and pixel 2 the rest."""
    z = keras.Input(shape=(latent_dim,))
    dense = keras.layers.Dense(784, use_bias=False)
    decoder = keras.Model(z, dense(z))
    kernel = np.zeros((latent_dim, 784), "float32")
    kernel[0, 0] = kernel[1, 1] = 1.0
    kernel[2:, 2] = 1.0
    dense.set_weights([kernel])
    return decoder


@pytest.mark.parametrize("latent_dim", [2, 5])
def test_grid_tile_at_row_i_column_j_is_decoded_from_x_j_and_y_i(latent_dim):
    image, grid_x, grid_y = decode_grid(_coordinate_decoder(latent_dim), n=4, z_range=3.0)
    assert image.shape == (4 * 28, 4 * 28)
    np.testing.assert_allclose(grid_x, [-3, -1, 1, 3])
    np.testing.assert_allclose(grid_y, [3, 1, -1, -3])  # high z[1] at the top, as in the seeds
    for i in range(4):
        for j in range(4):
            tile = image[i * 28:(i + 1) * 28, j * 28:(j + 1) * 28].ravel()
            assert tile[0] == pytest.approx(grid_x[j]) and tile[1] == pytest.approx(grid_y[i])
            assert tile[2] == 0.0  # dimensions past the first two held at the prior mean


@pytest.mark.parametrize("build,latent_dim", [(build_mlp_vae, 2), (build_cnn_vae, 3)])
def test_plot_results_writes_both_pictures(build, latent_dim, tmp_path):
    encoder, decoder, _ = build(latent_dim=latent_dim)
    shape = encoder.input.shape[1:]
    x = np.random.default_rng(0).uniform(size=(50, *shape)).astype("float32")
    y = np.arange(50) % 10
    plot_results((encoder, decoder), (x, y), model_name=str(tmp_path / "vae"))
    for name in ("vae_mean.png", "digits_over_latent.png"):
        with Image.open(tmp_path / "vae" / name) as picture:
            assert min(picture.size) > 500


def test_model_diagrams_are_drawn(tmp_path):
    encoder, decoder, _ = build_mlp_vae()
    written = plot_architecture(encoder, decoder, str(tmp_path / "vae_mlp"))
    assert [p.rsplit("/", 1)[1] for p in written] == [
        "vae_mlp_encoder.png", "vae_mlp_decoder.png", "vae_mlp.png",
    ]
    for path in written:
        with Image.open(path) as picture:
            assert picture.size[1] > 200


def test_missing_graphviz_is_one_warning_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` to be found
    encoder, decoder, _ = build_mlp_vae()
    with pytest.warns(UserWarning, match="model diagrams skipped") as caught:
        assert plot_architecture(encoder, decoder, str(tmp_path / "vae_mlp")) == []
    assert len(caught) == 1
