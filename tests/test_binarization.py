"""Binary digits from grey levels: the static threshold and the dynamic draws."""

import keras
import numpy as np
import pytest

from vae.data import DynamicBinarization, binarize

rng = np.random.default_rng(0)
GREY = rng.uniform(size=(250, 28, 28, 1)).astype("float32")


def assert_bernoulli_means(draws, p):
    """The draws' means sit around p as Bernoulli(p) means should, all pixels taken together."""
    n, pixels = len(draws), p.size
    z = (draws.mean(0) - p) / np.sqrt(p * (1 - p) / n)  # standardized: ~N(0, 1) per pixel
    assert abs(z.mean()) < 5 / np.sqrt(pixels)
    assert abs(z.std() - 1) < 0.1


def test_static_threshold_is_exactly_greater_than_one_half():
    x = np.array([0.0, 0.25, 0.5, np.nextafter(0.5, 1, dtype=np.float32), 0.75, 1.0], "float32")
    np.testing.assert_array_equal(binarize(x), [0, 0, 0, 1, 1, 1])
    assert binarize(x).dtype == np.float32


def test_static_binarization_of_real_digits_matches_the_tutorials_formula(mnist_flat):
    (x_train, _), _ = mnist_flat
    np.testing.assert_array_equal(binarize(x_train[:500]), np.where(x_train[:500] > 0.5, 1.0, 0.0))


def test_one_dynamic_draw_is_seeded_and_has_the_grey_levels_as_mean():
    draws = np.stack([binarize(GREY[:4], "dynamic", seed=s) for s in range(400)])
    assert set(np.unique(draws)) == {0.0, 1.0}
    assert_bernoulli_means(draws, GREY[:4])
    np.testing.assert_array_equal(binarize(GREY, "dynamic"), binarize(GREY, "dynamic"))
    assert not np.array_equal(binarize(GREY, "dynamic", seed=1), binarize(GREY, "dynamic"))
    # Levels 0 and 1 never flip.
    np.testing.assert_array_equal(
        binarize(np.array([0.0, 1.0] * 50), "dynamic", seed=3), [0.0, 1.0] * 50
    )


def test_unknown_binarization_is_refused():
    with pytest.raises(ValueError, match="unknown binarization 'otsu'"):
        binarize(GREY, "otsu")


def epoch(dataset):
    """One epoch as Keras reads it: on_epoch_begin, every batch, on_epoch_end."""
    dataset.on_epoch_begin()
    batches = [dataset[i][0] for i in range(len(dataset))]
    dataset.on_epoch_end()
    return batches


def test_dynamic_dataset_is_a_keras_pydataset_of_whole_batches():
    dataset = DynamicBinarization(GREY, batch_size=100, seed=0)
    assert isinstance(dataset, keras.utils.PyDataset)
    assert [len(b) for b in epoch(dataset)] == [100, 100, 50]
    with pytest.raises(IndexError):
        dataset[3]


def test_dynamic_draws_are_fresh_each_epoch_and_average_to_the_grey_levels():
    dataset = DynamicBinarization(GREY, batch_size=100, seed=0, shuffle=False)
    epochs = np.stack([np.concatenate(epoch(dataset)) for _ in range(300)])
    assert not np.array_equal(epochs[0], epochs[1])
    assert_bernoulli_means(epochs, GREY)


def test_dynamic_draws_repeat_with_the_seed_whatever_the_reading_order():
    first = DynamicBinarization(GREY, batch_size=100, seed=7)
    second = DynamicBinarization(GREY, batch_size=100, seed=7)
    for _ in range(2):
        forward = epoch(first)
        second.on_epoch_begin()
        backward = [second[i][0] for i in reversed(range(len(second)))][::-1]
        second.on_epoch_end()
        for a, b in zip(forward, backward):
            np.testing.assert_array_equal(a, b)
    other = DynamicBinarization(GREY, batch_size=100, seed=8)
    assert not np.array_equal(epoch(other)[0], forward[0])


def test_a_resumed_dataset_draws_the_epochs_left_as_an_uninterrupted_one():
    uninterrupted = DynamicBinarization(GREY, batch_size=100, seed=7)
    epochs = [epoch(uninterrupted) for _ in range(4)]
    resumed = DynamicBinarization(GREY, batch_size=100, seed=7)
    resumed.resume_after(2)  # a backup of epochs 1 and 2, in a new process
    for expected in epochs[2:]:
        for a, b in zip(epoch(resumed), expected):
            np.testing.assert_array_equal(a, b)
    restarted = DynamicBinarization(GREY, batch_size=100, seed=7)
    assert not np.array_equal(epoch(restarted)[0], epochs[2][0])


def test_each_epoch_reshuffles_the_digits():
    # Binary inputs stay as they are, so each epoch must be a permutation of them.
    digits = binarize(GREY)
    dataset = DynamicBinarization(digits, batch_size=64, seed=1)
    orders = []
    for _ in range(2):
        batches = np.concatenate(epoch(dataset)).reshape(len(digits), -1)
        np.testing.assert_array_equal(
            np.unique(batches, axis=0), np.unique(digits.reshape(len(digits), -1), axis=0)
        )
        orders.append(batches)
    assert not np.array_equal(orders[0], orders[1])


def test_fit_trains_on_fresh_draws_every_epoch():
    from vae.models import build_mlp_vae

    seen = []

    class Recorded(DynamicBinarization):
        def __getitem__(self, index):
            batch = super().__getitem__(index)
            seen.append((self.epoch, index, batch[0]))
            return batch

    flat = GREY[:60].reshape(60, -1)
    _, _, vae = build_mlp_vae(seed=0)
    vae.compile(optimizer="adam")
    history = vae.fit(Recorded(flat, batch_size=20, seed=0), epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    trained = {(e, i): batch for e, i, batch in seen if e > 0}
    assert sorted(trained) == [(e, i) for e in (1, 2, 3) for i in range(3)]
    epochs = [np.concatenate([trained[e, i] for i in range(3)]) for e in (1, 2, 3)]
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def test_dynamic_batches_carry_their_own_labels_for_a_conditional_model():
    # Black-and-white images: their draws are the images themselves, so each
    # batch's images can be traced back to the rows its labels name.
    images = (np.random.default_rng(1).uniform(size=(250, 8, 8, 1)) > 0.5).astype("float32")
    labels = np.repeat(np.arange(250.0)[:, None], 3, axis=1)  # row i says i
    dataset = DynamicBinarization(images, batch_size=100, seed=0, labels=labels)
    dataset.on_epoch_begin()
    seen = []
    for index in range(len(dataset)):
        ((digits, batch_labels),) = dataset[index]
        rows = batch_labels[:, 0].astype(int)
        np.testing.assert_array_equal(digits, images[rows])
        seen.extend(rows)
    assert sorted(seen) == list(range(250)) and seen != sorted(seen)  # all, shuffled


def test_perturb_replaces_the_asked_fraction_of_pixels_by_noise():
    black = np.zeros((400, 784), np.float32)
    # Binary images: a replaced pixel is a fair coin, so a black image gets
    # ones at half the rate of replacement.
    binary = np.concatenate(
        [DynamicBinarization(black, 100, seed=0, perturb=0.2)[i][0] for i in range(4)]
    )
    assert set(np.unique(binary)) == {0.0, 1.0}
    assert binary.mean() == pytest.approx(0.1, abs=0.005)
    # Grey images (no binarization): a replaced pixel is a uniform grey level.
    grey = np.full((400, 784), 0.25, np.float32)
    perturbed = np.concatenate(
        [
            DynamicBinarization(grey, 100, seed=0, binarize=False, perturb=0.3)[i][0]
            for i in range(4)
        ]
    )
    replaced = perturbed != 0.25
    assert replaced.mean() == pytest.approx(0.3, abs=0.005)
    assert perturbed[replaced].mean() == pytest.approx(0.5, abs=0.01)
    assert perturbed[replaced].min() >= 0 and perturbed[replaced].max() < 1
    with pytest.raises(ValueError, match="perturb must be a fraction"):
        DynamicBinarization(grey, 100, perturb=1.0)
