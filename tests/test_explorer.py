"""explorer.html in a real browser: Debian's Chromium, headless, driven by Selenium.

Each page is written by a training script (the MLP and the CNN with a 2-D
latent space, the MLP with 8 dimensions), opened from file://, hovered at two
points and clicked on a dot; what it shows is checked against the decoder of
the saved weights, `decoder.predict` at the z the page names, within 8-bit
rounding. One more page comes from the library, as in a notebook.

    python tests/test_explorer.py PAGE SCREENSHOT.png   # the README's picture
"""

import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from test_examples import run

# The page shows decoded images as 8-bit levels: each within half a level of
# 255 * decoder.predict, plus float32 noise between batched and single calls.
HALF_LEVEL = 0.5 + 1e-3
MOST_BYTES = 5 * 1000 * 1000
WINDOW = (1400, 900)
FLAGS = ["--train-samples", "600", "--test-samples", "300", "--batch-size", "100"]


def _chrome():
    """A headless Chromium under Selenium, or the reason there is none."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "needs Selenium (pip install selenium)"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        return None, "needs Chromium and its driver (apt-get install chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver given by path: Selenium Manager would try to download one.
    return webdriver.Chrome(options=options, service=Service(driver)), None


@pytest.fixture(scope="module")
def chrome():
    driver, reason = _chrome()
    if driver is None:
        # CI installs the browser, and says so: there a skip would hide a broken install.
        if os.environ.get("VAE_BROWSER_TESTS") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    yield driver
    driver.quit()


def _open(driver, page):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(Path(page).resolve().as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.body.dataset.ready === 'true'")
    )


def _canvas(driver, element_id):
    """A canvas's pixels as `(height, width, 3)` uint8."""
    width, height, rgba = driver.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "return [c.width, c.height, Array.from(c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data)];",
        element_id,
    )
    return np.asarray(rgba, np.uint8).reshape(height, width, 4)[..., :3]


def _z(text):
    return np.array([float(v) for v in re.search(r"z = \(([^)]*)\)", text).group(1).split(",")])


def _hover(driver, dx, dy):
    """Moves the mouse `dx, dy` pixels from the centre of #latent; returns the z shown and image."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    ActionChains(driver).move_to_element_with_offset(
        driver.find_element(By.ID, "latent"), dx, dy
    ).perform()
    return _z(driver.find_element(By.ID, "z").text), _canvas(driver, "decoded")


def _click_last_dot(driver):
    """Clicks the dot drawn last (on top of any it overlaps); returns what the page says of it."""
    from selenium.webdriver.common.by import By

    driver.find_elements(By.CSS_SELECTOR, "#dots circle")[-1].click()
    text = driver.find_element(By.ID, "clicked-text").text
    index, label = re.search(r"test image (\d+), class (\S+),", text).groups()
    return int(index), label, _z(text)


def _as_shown(images, height, width):
    """8-bit images `(count, ...)` as a canvas shows them: `(count, height, width, 3)`."""
    images = np.asarray(images).reshape(len(images), height, width, -1)
    return np.broadcast_to(images, (*images.shape[:3], 3))


def _check_page(driver, page, decoder, logits, x_test, y_test):
    from vae.plotting import to_pixels

    assert page.stat().st_size <= MOST_BYTES
    _open(driver, page)
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    height = width = 28  # MNIST's
    assert _canvas(driver, "decoded").shape == (height, width, 3)  # the image's own pixels
    shown = []
    for offset in ((-150, -120), (160, 140)):
        z, image = _hover(driver, *offset)
        expected = to_pixels(decoder.predict(z[None].astype(np.float32), verbose=0), logits)
        expected = _as_shown(expected * 255.0, height, width)[0]
        np.testing.assert_array_less(np.abs(image - expected), HALF_LEVEL)
        shown.append((z, image))
    assert not np.array_equal(shown[0][0], shown[1][0])
    assert not np.array_equal(shown[0][1], shown[1][1])  # two different images

    index, label, z = _click_last_dot(driver)
    expected = np.rint(np.asarray(x_test[index], np.float64) * 255)
    np.testing.assert_array_equal(
        _canvas(driver, "clicked-image"), _as_shown(expected[None], height, width)[0]
    )
    assert label == str(y_test[index])
    reconstruction = to_pixels(decoder.predict(z[None].astype(np.float32), verbose=0), logits)
    np.testing.assert_array_less(
        np.abs(
            _canvas(driver, "clicked-reconstruction")
            - _as_shown(reconstruction * 255.0, height, width)[0]
        ),
        HALF_LEVEL,
    )


def _script_test_set(script, mnist_path, flatten):
    """The test digits a script ran on with these flags, as it loads them."""
    from vae import cli, workflow

    args = cli.parse_args(script, "", 1, "adam", argv=["--data", str(mnist_path), *FLAGS])
    data = workflow.load_data(args, flatten=flatten)
    return data.x_test, data.y_test


@pytest.mark.parametrize("script, latent_dim", [("vae_mlp", 2), ("vae_cnn", 2), ("vae_mlp", 8)])
def test_a_script_writes_a_page_that_shows_the_decoder_at_the_z_it_names(
    chrome, script, latent_dim, mnist_path, tmp_path
):
    from vae.weights import load_model

    run(
        f"{script}.py",
        "--epochs",
        "1",
        "--data",
        str(mnist_path),
        "--latent-dim",
        str(latent_dim),
        *FLAGS,
        cwd=tmp_path,
    )
    page = tmp_path / script / "explorer.html"
    _, decoder, vae, _ = load_model(tmp_path / f"{script}_mnist.h5")
    x_test, y_test = _script_test_set(script, mnist_path, flatten=script == "vae_mlp")
    _check_page(chrome, page, decoder, vae.reconstruction == "bce_logits", x_test, y_test)
    about = chrome.find_element("id", "about").text
    assert ("principal directions" in about) == (latent_dim > 2)
    legend = chrome.find_element("id", "legend").text.split()
    assert legend == [str(d) for d in range(10)]
    screenshot = tmp_path / "explorer.png"
    chrome.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_page_from_a_notebook_shows_inline_and_without_labels_in_one_colour(
    chrome, mnist_flat, tmp_path
):
    from vae.explorer import explore
    from vae.models import build_mlp_vae

    (x_train, _), (x_test, _) = mnist_flat
    encoder, decoder, vae = build_mlp_vae(latent_dim=3, seed=0)
    vae.compile(optimizer="adam")
    vae.fit(x_train[:600], epochs=1, batch_size=100, verbose=0)
    page = explore(encoder, decoder, x_test[:300], dots=300)
    assert page._repr_html_().startswith("<iframe srcdoc=")
    path = page.save(tmp_path / "explorer.html")
    _open(chrome, path)
    assert chrome.find_element("id", "legend").text == "no labels, so one colour"
    assert len(chrome.find_elements("css selector", "#dots circle")) == 300
    z, _ = _hover(chrome, 0, 0)
    assert z.shape == (3,)


if __name__ == "__main__":
    # The README's screenshot: the page hovered and a dot clicked, as the test does.
    driver, reason = _chrome()
    if driver is None:
        sys.exit(reason)
    _open(driver, sys.argv[1])
    _hover(driver, -60, -90)
    _click_last_dot(driver)
    _hover(driver, -60, -90)
    driver.save_screenshot(sys.argv[2])
    driver.quit()
