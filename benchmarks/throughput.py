"""Training throughput: this package against the keras.io and pytorch/examples styles.

Every implementation trains the same architecture with the same loss (binary
cross-entropy summed over pixels plus the analytic KL, averaged over the
batch), batch size 128, Adam (learning rate 1e-3), float32, on the same real
MNIST digits. Each runs in its own process (so its peak memory is its own and
TensorFlow and PyTorch never share thread pools) and trains in one
`fit(epochs=N)` call, as a user does; the processes take turns, pausing
between epochs, in an order that rotates every round so that drift of
the machine's speed falls on all of them alike. After one warm-up epoch each,
the table reports the median over the timed epochs.

    python benchmarks/throughput.py --data ../shared/data/mnist
    python benchmarks/throughput.py --models mlp --epochs 7 \\
        --implementations package keras_io torch "package:jit_compile=False"

An implementation is `package`, `keras_io` or `torch`, optionally followed by
`:option=value,...`: `backend=jax` (Keras backend of that process),
`jit_compile=...` and `steps_per_execution=...` (passed to `compile`),
`threads=N` (intra-op threads), `mixed_precision=mixed_bfloat16` (the
package's `--mixed-precision`: bfloat16 layers, float32 weights and loss),
`huge_pages=False` (JAX without the glibc
tunable that the example scripts set, see `vae/allocator.py`). `--startup FILE` also times
`python examples/vae_mlp.py -w FILE` from launch to its last picture.
"""

import argparse
import math
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 128
PIXELS = 784

# Multiply-accumulates of one digit's forward pass. Training costs three
# forward passes (forward, and two matrix products per layer backward: the
# gradients of the weights and of the layer's input) less one for the first
# layer, whose input, the digit, needs no gradient; a multiply-accumulate is
# two floating-point operations.
FIRST_LAYER_MACS = {"mlp": PIXELS * 512, "cnn": 14 * 14 * 32 * 3 * 3 * 1}


def mlp_forward_macs(hidden=512, latent=2):
    return PIXELS * hidden + hidden * 2 * latent + latent * hidden + hidden * PIXELS


def cnn_forward_macs(latent=2):
    conv1 = FIRST_LAYER_MACS["cnn"]
    conv2 = 7 * 7 * 64 * 3 * 3 * 32
    dense = 3136 * 16 + 16 * 2 * latent
    decoder_dense = latent * 3136
    # A transposed convolution scatters the whole kernel from every input pixel.
    deconv1 = 7 * 7 * 64 * 3 * 3 * 64  # 7x7 -> 14x14
    deconv2 = 14 * 14 * 32 * 3 * 3 * 64  # 14x14 -> 28x28
    deconv3 = 28 * 28 * 1 * 3 * 3 * 32
    return conv1 + conv2 + dense + decoder_dense + deconv1 + deconv2 + deconv3


def training_flops_per_digit(model):
    macs = mlp_forward_macs() if model == "mlp" else cnn_forward_macs()
    return 2 * (3 * macs - FIRST_LAYER_MACS[model])


# ---------------------------------------------------------------- implementations


def _keras_setup(options):
    os.environ["KERAS_BACKEND"] = options.get("backend", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "threads" in options:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(options["threads"]))
        tf.config.threading.set_inter_op_parallelism_threads(int(options["threads"]))
    import keras

    return keras


def _compile_options(options):
    compiled = {}
    if "jit_compile" in options:
        value = options["jit_compile"]
        compiled["jit_compile"] = value if value == "auto" else value == "True"
    if "steps_per_execution" in options:
        compiled["steps_per_execution"] = int(options["steps_per_execution"])
    return compiled


def _fit(keras, vae, x, loss_name):
    """Trains with one `fit(epochs=N)` call, as the examples and a user do.

    Each `fit` call builds its data pipeline afresh (on TensorFlow it copies
    the whole array into a tensor); a user pays that once, so the epochs are
    the epochs of one call, timed from `on_epoch_begin` to `on_epoch_end`,
    the first from the call itself (its set-up and compilation included).
    `epoch_done(seconds, loss)` runs between epochs and may wait there.
    """

    def train(epochs, epoch_done):
        class Turns(keras.callbacks.Callback):
            start = time.perf_counter()

            def on_epoch_begin(self, epoch, logs=None):
                if epoch:
                    self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                epoch_done(time.perf_counter() - self.start, logs[loss_name])

        vae.fit(x, epochs=epochs, batch_size=BATCH_SIZE, verbose=0, callbacks=[Turns()])

    return train


def package_trainer(model, x, options):
    """(a) This package, exactly as a user calls it."""
    keras = _keras_setup(options)
    from vae import build_cnn_vae, build_mlp_vae, mixed_precision

    if "mixed_precision" in options:
        mixed_precision(options["mixed_precision"])
    _, _, vae = build_mlp_vae() if model == "mlp" else build_cnn_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), **_compile_options(options))
    return _fit(keras, vae, x, "loss")


def keras_io_trainer(model, x, options):
    """(b) The keras.io VAE example's style: a Model subclass with a GradientTape train_step."""
    keras = _keras_setup(options)
    import tensorflow as tf
    from keras import layers, ops

    class Sampling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    latent_dim = 2
    if model == "mlp":
        encoder_inputs = keras.Input(shape=(PIXELS,))
        h = layers.Dense(512, activation="relu")(encoder_inputs)
    else:
        encoder_inputs = keras.Input(shape=(28, 28, 1))
        h = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
        h = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(h)
        h = layers.Flatten()(h)
        h = layers.Dense(16, activation="relu")(h)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    if model == "mlp":
        h = layers.Dense(512, activation="relu")(latent_inputs)
        decoder_outputs = layers.Dense(PIXELS, activation="sigmoid")(h)
    else:
        h = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
        h = layers.Reshape((7, 7, 64))(h)
        h = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(h)
        h = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(h)
        decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(h)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    class VAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
            self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

        def train_step(self, data):
            with tf.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data)
                reconstruction = self.decoder(z)
                per_pixel = keras.losses.binary_crossentropy(
                    ops.expand_dims(data, -1), ops.expand_dims(reconstruction, -1)
                )
                reconstruction_loss = ops.mean(
                    ops.sum(ops.reshape(per_pixel, (ops.shape(data)[0], -1)), axis=1)
                )
                kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
                kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
                total_loss = reconstruction_loss + kl_loss
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.total_loss_tracker.update_state(total_loss)
            self.reconstruction_loss_tracker.update_state(reconstruction_loss)
            self.kl_loss_tracker.update_state(kl_loss)
            return {m.name: m.result() for m in self.metrics}

    vae = VAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), **_compile_options(options))
    return _fit(keras, vae, x, "total_loss")


def torch_trainer(model, x, options):
    """(c) The pytorch/examples VAE style: an nn.Module and a plain training loop."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.set_num_threads(int(options.get("threads", os.cpu_count())))
    torch.manual_seed(1)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(PIXELS, 512)
            self.fc21 = nn.Linear(512, 2)
            self.fc22 = nn.Linear(512, 2)
            self.fc3 = nn.Linear(2, 512)
            self.fc4 = nn.Linear(512, PIXELS)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def decode(self, z):
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, stride=2, padding=1)
            self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
            self.fc1 = nn.Linear(3136, 16)
            self.fc21 = nn.Linear(16, 2)
            self.fc22 = nn.Linear(16, 2)
            self.fc3 = nn.Linear(2, 3136)
            self.deconv1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1)
            self.deconv2 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
            self.deconv3 = nn.ConvTranspose2d(32, 1, 3, padding=1)

        def encode(self, x):
            h = F.relu(self.conv2(F.relu(self.conv1(x))))
            h = F.relu(self.fc1(h.flatten(1)))
            return self.fc21(h), self.fc22(h)

        def decode(self, z):
            h = F.relu(self.fc3(z)).view(-1, 64, 7, 7)
            return torch.sigmoid(self.deconv3(F.relu(self.deconv2(F.relu(self.deconv1(h))))))

    net = MLP() if model == "mlp" else CNN()

    def forward(x):
        mu, logvar = net.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return net.decode(z), mu, logvar

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    # PyTorch images are channels-first.
    data = torch.from_numpy(x if model == "mlp" else x.transpose(0, 3, 1, 2).copy())

    def epoch():
        net.train()
        total = 0.0
        for batch in torch.randperm(len(data)).split(BATCH_SIZE):
            x_batch = data[batch]
            optimizer.zero_grad()
            recon, mu, logvar = forward(x_batch)
            bce = F.binary_cross_entropy(recon, x_batch, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (bce + kld) / len(x_batch)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x_batch)
        return total / len(data)

    def train(epochs, epoch_done):
        for _ in range(epochs):
            start = time.perf_counter()
            loss = epoch()
            epoch_done(time.perf_counter() - start, loss)

    return train


TRAINERS = {"package": package_trainer, "keras_io": keras_io_trainer, "torch": torch_trainer}


def _worker(spec, model, data_path, epochs, connection):
    """Trains `epochs` epochs, each when the parent says "epoch", and reports each."""
    name, options = parse_spec(spec)
    sys.path.insert(0, str(ROOT))
    from vae.data import load_mnist

    (x, _), _ = load_mnist(data_path, flatten=(model == "mlp"))
    train = TRAINERS[name](model, x, options)
    done = 0

    def epoch_done(seconds, loss):
        nonlocal done
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        connection.send((seconds, float(loss), peak_mib, len(x)))
        done += 1
        if done < epochs:
            connection.recv()  # wait for this implementation's next turn

    connection.recv()
    train(epochs, epoch_done)


def parse_spec(spec):
    name, _, rest = spec.partition(":")
    if name not in TRAINERS:
        raise SystemExit(f"unknown implementation {name!r}: use one of {', '.join(TRAINERS)}")
    options = dict(item.split("=", 1) for item in rest.split(",") if item)
    return name, options


# ---------------------------------------------------------------- measurement


def _environment(spec):
    """The worker's environment: on JAX, the package runs as its scripts do (vae/allocator.py)."""
    sys.path.insert(0, str(ROOT))
    from vae.allocator import TUNABLE, huge_pages_would_help

    name, options = parse_spec(spec)
    env = dict(os.environ)
    if (
        name == "package"
        and options.get("backend") == "jax"
        and options.get("huge_pages") != "False"
        and huge_pages_would_help()
    ):
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), TUNABLE]))
    return env


def measure(model, specs, data_path, epochs):
    """Per implementation: the first epoch (compilation included), then `epochs` timed ones."""
    context = multiprocessing.get_context("spawn")
    workers, first = {}, {}
    for spec in specs:
        parent, child = context.Pipe()
        process = context.Process(
            target=_worker, args=(spec, model, data_path, epochs + 1, child), daemon=True
        )
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(_environment(spec))  # a spawned process starts with these
        try:
            process.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        workers[spec] = (process, parent)
        parent.send("epoch")  # first epoch: one at a time, so start-ups do not overlap timed epochs
        first[spec] = parent.recv()[0]
    results = {spec: [] for spec in specs}
    for round_ in range(epochs):
        shift = round_ % len(specs)
        for spec in specs[shift:] + specs[:shift]:
            workers[spec][1].send("epoch")
            results[spec].append(workers[spec][1].recv())
    for process, _ in workers.values():
        process.join(timeout=30)
    return first, results


def forward_macs(model):
    """Multiply-adds of one forward pass of a model's Dense and (transposed) convolution layers."""
    import keras

    macs = 0
    for layer in model._flatten_layers(include_self=False):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        if isinstance(layer, keras.layers.Dense):
            macs += math.prod(kernel.shape)
        elif isinstance(layer, keras.layers.Conv2DTranspose):  # input pixels meet the kernel
            macs += math.prod(layer.input.shape[1:-1]) * math.prod(kernel.shape)
        else:  # a convolution: output pixels meet the kernel
            macs += math.prod(layer.output.shape[1:-1]) * math.prod(kernel.shape)
    return macs


def machine_peak_gflops(seconds=3.0):
    """Single-precision matrix-multiply speed of this machine (NumPy's BLAS), in GFLOP/s."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    a @ a
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ a
        count += 1
    return count * 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def startup_seconds(weights, data_path):
    """Launch of `vae_mlp.py -w FILE` to its last picture written."""
    with tempfile.TemporaryDirectory() as out:
        start = time.time()
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "vae_mlp.py"),
                "-w",
                weights,
                "--data",
                data_path,
                "--out",
                out,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "MPLBACKEND": "Agg"},
        )
        last = max(p.stat().st_mtime for p in Path(out).rglob("*.png"))
        return last - start


def table(model, measured, peak):
    first, results = measured
    flops = training_flops_per_digit(model)
    reference = (
        statistics.median(s for s, *_ in results["keras_io"]) if "keras_io" in results else None
    )
    lines = [
        f"\n{model.upper()} VAE: {flops / 1e6:.1f} MFLOP per digit per training step; "
        f"machine peak {peak:.0f} GFLOP/s -> at best "
        f"{60000 * flops / (peak * 1e9):.2f} s per epoch",
        "| implementation | samples/s | first epoch s | steady s/epoch (median) "
        "| 3-epoch fit s (first + 2 steady) | vs keras.io style | peak RSS MiB | final loss "
        "| share of peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, rows in results.items():
        seconds = statistics.median(s for s, *_ in rows)
        samples = rows[0][3]
        ratio = f"{reference / seconds:.2f}x" if reference else "-"
        lines.append(
            f"| {spec} | {samples / seconds:,.0f} | {first[spec]:.2f} | {seconds:.2f} | "
            f"{first[spec] + 2 * seconds:.1f} | {ratio} | "
            f"{max(r[2] for r in rows):,.0f} | {rows[-1][1]:.2f} | "
            f"{samples * flops / seconds / (peak * 1e9):.0%} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=str(ROOT.parent / "shared" / "data" / "mnist"),
        help="MNIST npz or IDX folder (default ../shared/data/mnist)",
    )
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument(
        "--implementations",
        nargs="+",
        default=None,
        help="default: package keras_io, and torch when it is installed",
    )
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs each (default 5)")
    parser.add_argument("--startup", metavar="FILE", help="also time vae_mlp.py -w FILE")
    args = parser.parse_args()

    specs = args.implementations
    if specs is None:
        import importlib.util

        specs = ["package", "keras_io"] + (["torch"] if importlib.util.find_spec("torch") else [])
    peak = machine_peak_gflops()
    print(f"machine: {os.cpu_count()} CPUs, {peak:.0f} GFLOP/s float32 matrix multiply (NumPy)")
    for model in args.models:
        print(table(model, measure(model, specs, args.data, args.epochs), peak), flush=True)
    if args.startup:
        print(
            f"\nstart-up, vae_mlp.py -w {args.startup} to last picture: "
            f"{startup_seconds(args.startup, args.data):.1f} s"
        )


if __name__ == "__main__":
    main()
