"""explorer.html's two ways of getting the decoder into the page, measured.

`vae.explorer` decodes a grid of images beforehand into one PNG (an atlas).
The other way ships the decoder's weights and runs them in JavaScript. For
each model (the MLP and the CNN examples' 2-D models, the MLP with 8
latent dimensions, each trained for one epoch on MNIST by its script into
`--out`), this prints:

- the atlas page: its size, the seconds `vae.explorer.explorer` takes, and in
  headless Chromium the time to load it and the time a hover takes (a
  `mousemove` that draws a tile and names its z, the mean of 200);
- the weights: their size as float32 in base64, the decoder's multiply-adds
  per image, and for the MLPs a plain JavaScript forward pass of the Dense
  layers timed in the same browser (ms per image, and its largest
  difference from `decoder.predict`). The CNN's transposed convolutions are
  not written in JavaScript; its time is the MLP's multiply-add rate applied
  to its multiply-adds, a lower bound (a convolution in JavaScript runs no
  faster than a matrix product).

    python benchmarks/explorer.py --data ../shared/data/mnist
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

MODELS = [("vae_mlp", 2), ("vae_cnn", 2), ("vae_mlp", 8)]

DENSE_PAGE = """<!DOCTYPE html><meta charset="utf-8"><script>
"use strict";
const layers = %s;
const weights = layers.map(({kernel, bias}) => [kernel, bias].map((text) =>
  new Float32Array(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer)));
// z -> Dense -> ... -> pixel probabilities, as keras.layers.Dense computes them.
function decode(z) {
  let x = Float32Array.from(z);
  layers.forEach(({inputs, outputs, activation}, n) => {
    const [kernel, bias] = weights[n];
    const y = Float32Array.from(bias);
    for (let i = 0; i < inputs; i++) {
      const value = x[i], row = i * outputs;
      for (let j = 0; j < outputs; j++) y[j] += value * kernel[row + j];
    }
    for (let j = 0; j < outputs; j++) {
      if (activation === "relu") y[j] = Math.max(y[j], 0);
      else if (activation === "sigmoid") y[j] = 1 / (1 + Math.exp(-y[j]));
    }
    x = y;
  });
  return x;
}
</script>"""


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="MNIST's IDX files (default: as load_mnist)")
    parser.add_argument("--out", type=Path, default=Path("~/quality-runs/explorer").expanduser())
    parser.add_argument("--hovers", type=int, default=200)
    return parser.parse_args()


def train(args, script, latent_dim):
    """Trains `script` for one epoch into its own folder, once; returns the folder."""
    out = args.out / f"{script}_{latent_dim}d"
    if not (out / f"{script}_mnist.h5").exists():
        data = ["--data", args.data] if args.data else []
        command = [sys.executable, str(ROOT / "examples" / f"{script}.py"), "--epochs", "1"]
        command += ["--latent-dim", str(latent_dim), "--out", str(out), *data]
        subprocess.run(command, check=True, capture_output=True)
    return out


def hover_ms(driver, hovers):
    """Mean milliseconds of a `mousemove` over #latent, at `hovers` points along a diagonal."""
    return driver.execute_script(
        """
        const svg = document.getElementById("latent"), box = svg.getBoundingClientRect();
        const started = performance.now();
        for (let n = 0; n < arguments[0]; n++) {
          const f = (n + 0.5) / arguments[0];
          svg.dispatchEvent(new MouseEvent("mousemove",
            {clientX: box.left + f * box.width, clientY: box.top + f * box.height}));
        }
        return (performance.now() - started) / arguments[0];
        """,
        hovers,
    )


def dense_layers(decoder):
    """The decoder's Dense layers for DENSE_PAGE, or None if it has others that compute."""
    import keras
    import numpy as np

    layers = []
    for layer in decoder.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        activation = layer.get_config().get("activation")
        if not isinstance(layer, keras.layers.Dense) or activation not in ("relu", "sigmoid"):
            return None
        kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
        layers.append(
            {
                "inputs": kernel.shape[0],
                "outputs": kernel.shape[1],
                "activation": activation,
                "kernel": base64.b64encode(kernel.tobytes()).decode(),
                "bias": base64.b64encode(bias.tobytes()).decode(),
            }
        )
    return layers


def javascript_decoder(driver, decoder, layers, images=200):
    """ms per image of DENSE_PAGE's forward pass, and its largest difference from predict."""
    import numpy as np

    page = Path(tempfile.mkdtemp()) / "dense.html"
    page.write_text(DENSE_PAGE % json.dumps(layers))
    driver.get(page.as_uri())
    z = np.random.default_rng(0).normal(size=(images, decoder.input_shape[-1])).astype(np.float32)
    seconds, decoded = driver.execute_script(
        """
        const started = performance.now();
        const out = arguments[0].map((z) => Array.from(decode(z)));
        return [(performance.now() - started) / 1000, out];
        """,
        z.tolist(),
    )
    expected = decoder.predict(z, verbose=0).reshape(images, -1)
    return seconds / images * 1000, float(np.abs(np.asarray(decoded) - expected).max())


def main():
    args = parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from test_explorer import _chrome, _open
    from throughput import forward_macs

    from vae import cli, workflow
    from vae.explorer import explore
    from vae.weights import load_model

    driver, reason = _chrome()
    if driver is None:
        sys.exit(reason)
    rows, rate = [], None
    for script, latent_dim in MODELS:
        out = train(args, script, latent_dim)
        encoder, decoder, vae, _ = load_model(out / f"{script}_mnist.h5")
        argv = ["--data", args.data] if args.data else []
        data = workflow.load_data(
            cli.parse_args(script, "", 1, "adam", argv=argv), flatten=script == "vae_mlp"
        )
        started = time.perf_counter()
        page = explore(
            encoder,
            decoder,
            data.x_test,
            data.y_test,
            logits=vae.reconstruction == "bce_logits",
            image_shape=data.image_shape,
        ).save(out / "measured.html")
        build = time.perf_counter() - started
        started = time.perf_counter()
        _open(driver, page)
        load = time.perf_counter() - started
        hover = hover_ms(driver, args.hovers)
        weights_mb = decoder.count_params() * 4 * 4 / 3 / 1e6
        macs = forward_macs(decoder)
        layers = dense_layers(decoder)
        if layers:
            js_ms, error = javascript_decoder(driver, decoder, layers)
            rate = macs / (js_ms / 1000)
            js = f"{js_ms:.2f} ms (largest difference {error:.1e})"
        else:
            js = f"at least {macs / rate * 1000:.1f} ms (its multiply-adds at the MLP's rate)"
        rows.append(
            f"| {script}, {latent_dim}-D | {page.stat().st_size / 1e6:.2f} MB | {build:.1f} s | "
            f"{load:.2f} s | {hover:.2f} ms | {weights_mb:.2f} MB | {macs / 1e6:.2f} M | {js} |"
        )
    driver.quit()
    print(
        "| model | atlas page | built in | loaded in Chromium | a hover | weights (base64) "
        "| multiply-adds per image | JavaScript decoder, per image |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if rate:
        print(f"JavaScript's multiply-add rate on the MLP decoders: {rate / 1e9:.2f} G/s")


if __name__ == "__main__":
    main()
