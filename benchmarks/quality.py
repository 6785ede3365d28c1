"""Quality benchmark: published MNIST likelihoods, reproduced.

Each run trains one model on dynamically binarized MNIST (all 60,000
training digits, drawn afresh every epoch), backing up every epoch to
`~/quality-runs/<run>/` so that an interrupted run continues with
`--resume`, possibly in a later session. When it finishes it saves the
weights to `benchmarks/results/<run>.weights.h5`, estimates the negative
log-likelihood by importance sampling with k = 5000 draws on all 10,000 test
digits (one fixed Bernoulli draw, the one `examples/evaluate.py` uses), and
writes `benchmarks/results/<run>.json` with the numbers and the command that
recomputes them from the weights.

Runs:

  burda_vae_k1    Burda et al. 2015's VAE: 784-200-200-50 tanh, Bernoulli logits,
                  k = 1 (the ELBO); Adam (epsilon 1e-4), batch 20, eight stages of
                  3^(i-1) epochs with the learning rate 1e-3 * 10^(-(i-1)/7):
                  3,280 epochs. Published NLL 86.76.
  burda_iwae_k5   the same model and schedule, trained on the IWAE bound with
                  k = 5. Published NLL 85.54.
  burda_vae_k1_fast
                  burda_vae_k1 in less time: batch 128, Burda's eight stages
                  shrunk to 1,800 epochs, the learning rates scaled by
                  sqrt(128 / 20) (2.5e-3 down to 2.5e-4).
  burda_vae_k1_fast_anneal
                  its first 800 epochs, then 300 with the rate falling tenfold.
  burda_vae_k1_fast_long
                  all its 1,800 epochs, then 300 with the rate falling tenfold.
  burda_vae_k1_fast_1500
                  the same in 1,500 epochs: the stages shrunk to 1,200, then 300
                  falling tenfold.
  burda_vae_k1_fast_linear
                  burda_vae_k1_fast_anneal with the rates scaled by 128 / 20
                  instead (6.4e-3 at first).
  conv_vae        the TensorFlow tutorial's conv VAE (latent 50, Adam 1e-4,
                  batch 100) for its full 100 epochs.

    python benchmarks/quality.py burda_vae_k1 --data ../shared/data/mnist
    python benchmarks/quality.py burda_vae_k1 --data ../shared/data/mnist --resume
    python benchmarks/quality.py burda_vae_k1 --data ../shared/data/mnist --epochs 2 \\
        --train-samples 2000 --test-samples 200 --k 100 --results /tmp/smoke   # a smoke test

--epochs N stops after N epochs of the schedule (a shorter run, named so in
its results). Each run defaults to the backend fastest for it on the 2-core
CPU: JAX for Burda's MLP (1.65 s an epoch); TensorFlow for the conv VAE, which
trains at 12 s an epoch against JAX's 14 s and scores the 10,000 test digits
three times as fast (0.36 s a digit at k = 5000 against 1.1 s).
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

# Run from a checkout without installing: make the repository importable.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae import cli  # argparse only: Keras is not imported yet

# Burda's VAE at batch 128, which uses the CPU better (1.9 s an epoch against
# 3.9 s at 20); Adam's learning rate grows with the square root of the batch.
FAST = dict(
    model="burda",
    k=1,
    schedule="burda",
    batch_size=128,
    stages_over=1800,
    learning_rate=1e-3 * math.sqrt(128 / 20),
    published=86.76,
    backend="jax",
)
RUNS = {
    "burda_vae_k1": dict(
        model="burda", k=1, schedule="burda", batch_size=20, published=86.76, backend="jax"
    ),
    "burda_iwae_k5": dict(
        model="burda", k=5, schedule="burda", batch_size=20, published=85.54, backend="jax"
    ),
    "burda_vae_k1_fast": FAST,
    # The same, cut short: from epoch 801 the rate falls to a tenth.
    "burda_vae_k1_fast_anneal": {**FAST, "anneal": (800, 300)},
    # All of burda_vae_k1_fast, then the same fall.
    "burda_vae_k1_fast_long": {**FAST, "anneal": (1800, 300)},
    # _long's shape in 1,500 epochs, for a faster CPU's 36 minutes.
    "burda_vae_k1_fast_1500": {**FAST, "stages_over": 1200, "anneal": (1200, 300)},
    # The cut-short run with the rate grown in proportion to the batch (Goyal et al.'s rule).
    "burda_vae_k1_fast_linear": {**FAST, "anneal": (800, 300), "learning_rate": 1e-3 * 128 / 20},
    "conv_vae": dict(
        model="conv", k=1, schedule="constant", batch_size=100, published=None, backend="tensorflow"
    ),
}
MODELS = {
    "burda": "784-200-200-50 tanh, Bernoulli logits (Burda et al. 2015)",
    "conv": "conv VAE of the TensorFlow tutorial, latent 50",
}
BURDA_STAGES = 8
BURDA_EPOCHS = sum(3**i for i in range(BURDA_STAGES))  # 3,280


def burda_schedule(epoch, epochs=BURDA_EPOCHS, learning_rate=1e-3):
    """(stage from 1, learning rate) of a 0-based epoch: stage i lasts 3^(i-1) of
    Burda's 3,280 epochs, or the same share of `epochs`, at `learning_rate` * 10^(-(i-1)/7)."""
    stage, end = 1, 1
    while epoch >= end * epochs / BURDA_EPOCHS and stage < BURDA_STAGES:
        stage += 1
        end += 3 ** (stage - 1)
    return stage, learning_rate * 10 ** (-(stage - 1) / 7)


def schedule_epochs(run):
    """The epochs of `run`'s whole schedule."""
    if "anneal" in run:
        start, length = run["anneal"]
        return start + length
    return run.get("stages_over", BURDA_EPOCHS) if run["schedule"] == "burda" else 100


def learning_rate(run, epoch):
    """The learning rate of a 0-based epoch of a Burda-style `run`: Burda's stages
    shrunk to `stages_over` epochs, and with `anneal=(start, length)`, from epoch
    `start` on, a fall tenfold over the run's last `length` epochs."""
    stages = run.get("stages_over", BURDA_EPOCHS)
    base = run.get("learning_rate", 1e-3)
    if "anneal" in run and epoch >= run["anneal"][0]:
        start, length = run["anneal"]
        reached = burda_schedule(start - 1, stages, base)[1]
        return reached * 10 ** (-(epoch - start + 1) / length)
    return burda_schedule(epoch, stages, base)[1]


def describe_schedule(run):
    """`run`'s optimizer and schedule in words, for its results."""
    if run["schedule"] != "burda":
        return "Adam 1e-4"
    stages = run.get("stages_over", BURDA_EPOCHS)
    text = (
        f"Burda et al.: Adam (epsilon 1e-4), {BURDA_STAGES} stages of 3^(i-1) epochs"
        + ("" if stages == BURDA_EPOCHS else f" shrunk to {stages} in all")
        + f", learning rate {learning_rate(run, 0):.3g} * 10^(-(i-1)/7)"
    )
    if "anneal" in run:
        start, length = run["anneal"]
        text += f"; from epoch {start + 1} on, falling tenfold over {length} epochs"
    return text


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", choices=sorted(RUNS))
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="mnist.npz or a folder of MNIST IDX files (default: as load_mnist)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run backed up in --checkpoint-dir"
    )
    parser.add_argument(
        "--checkpoint-dir",
        default=os.path.expanduser("~/quality-runs"),
        help="where the runs back up every epoch (default %(default)s)",
    )
    parser.add_argument(
        "--results",
        default=str(ROOT / "benchmarks" / "results"),
        help="where the weights and the JSON go (default benchmarks/results)",
    )
    parser.add_argument(
        "--epochs",
        type=cli.positive(1),
        help="stop after this many epochs of the schedule (default: all)",
    )
    parser.add_argument(
        "--k",
        type=cli.positive(1),
        default=5000,
        help="importance samples per test digit (default %(default)s)",
    )
    parser.add_argument(
        "--train-samples",
        type=cli.positive(1),
        metavar="M",
        help="train on the first M digits (default all 60,000)",
    )
    parser.add_argument(
        "--test-samples",
        type=cli.positive(1),
        metavar="K",
        help="evaluate on the first K test digits (default all 10,000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--backend",
        choices=sorted(cli.BACKENDS),
        help="Keras backend (default: the run's fastest, see above)",
    )
    args = parser.parse_args(argv)
    args.backend = args.backend or RUNS[args.run]["backend"]
    cli.choose_backend(parser, args.backend, command_line=argv is None)
    return args


def _build(run):
    from vae.models import BURDA_MLP, build_conv_vae, build_mlp_vae

    if run["model"] == "burda":
        return build_mlp_vae(**BURDA_MLP, k=run["k"], seed=0)
    return build_conv_vae(latent_dim=50, seed=0)


class EpochSeconds:
    """Seconds of every epoch, kept beside the backup so a resumed run adds up all its sessions."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "epoch_seconds.json")
        try:
            with open(self.path) as f:
                self.seconds = json.load(f)
        except FileNotFoundError:
            self.seconds = []

    def callback(self):
        import keras

        from vae.atomic import atomic_write

        timer = self

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                timer.seconds = timer.seconds[:epoch] + [time.perf_counter() - self.started]

                def write(path):
                    with open(path, "w") as f:
                        json.dump(timer.seconds, f)

                atomic_write(timer.path, write)

        return Timer()


def gzip_copy(source, target):
    """Copies an HDF5 weights file with every array gzip-compressed (Keras reads it as is)."""
    import h5py

    with h5py.File(source) as f, h5py.File(target, "w") as g:
        g.attrs.update(f.attrs)

        def copy(name, item):
            if isinstance(item, h5py.Group):
                g.require_group(name).attrs.update(item.attrs)
                return
            compressed = dict(compression="gzip", compression_opts=9, shuffle=True)
            g.create_dataset(name, data=item[()], **(compressed if item.shape else {}))
            g[name].attrs.update(item.attrs)

        f.visititems(copy)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run = RUNS[args.run]

    import keras

    from vae.atomic import atomic_write
    from vae.data import DynamicBinarization, binarize, load_mnist
    from vae.evaluation import importance_sampled_log_likelihood, mean_and_standard_error
    from vae.safeguards import StopOnNonFiniteLoss, TrainingBackup
    from vae.weights import save_weights

    keras.utils.set_random_seed(args.seed)
    flat = run["model"] == "burda"
    (x_train, _), (x_test, _) = load_mnist(args.data, flatten=flat)
    x_train, x_test = x_train[: args.train_samples], x_test[: args.test_samples]
    x_test = binarize(x_test, "dynamic")  # seed 0: evaluate.py's digits
    _, _, vae = _build(run)
    epochs = args.epochs or schedule_epochs(run)
    if run["schedule"] == "burda":
        vae.compile(optimizer=keras.optimizers.Adam(learning_rate(run, 0), epsilon=1e-4))
        callbacks = [keras.callbacks.LearningRateScheduler(lambda e: learning_rate(run, e))]
    else:
        vae.compile(optimizer=keras.optimizers.Adam(1e-4))
        callbacks = []

    backup_dir = os.path.join(args.checkpoint_dir, args.run)
    backup = TrainingBackup(backup_dir)
    if backup.completed_epochs() is not None and not args.resume:
        sys.exit(
            f"quality.py: error: {backup_dir} holds an unfinished run "
            f"({backup.completed_epochs()} epochs); add --resume, or delete it"
        )
    if args.resume and backup.completed_epochs() is None:
        sys.exit(
            f"quality.py: error: --resume: no backup of {args.run} in {backup_dir}; run "
            "without --resume to start"
        )
    if args.resume:
        print(
            f"resuming {args.run} from {backup_dir}: {backup.completed_epochs()} of "
            f"{epochs} epochs done"
        )
    timer = EpochSeconds(backup_dir)
    train = DynamicBinarization(x_train, run["batch_size"], seed=args.seed)
    if args.resume:
        train.resume_after(backup.completed_epochs())
    print(
        f"{args.run}: {MODELS[run['model']]}, k = {run['k']}, {epochs} epochs, batch "
        f"{run['batch_size']}, {len(x_train)} digits, {keras.backend.backend()} backend"
    )
    # Burda's schedule has thousands of short epochs: the test set is scored every tenth.
    vae.fit(
        train,
        epochs=epochs,
        validation_data=(x_test, None),
        verbose=2,
        validation_freq=10 if run["schedule"] == "burda" else 1,
        callbacks=[StopOnNonFiniteLoss(), backup, timer.callback(), *callbacks],
    )

    os.makedirs(args.results, exist_ok=True)
    weights_file = os.path.join(args.results, f"{args.run}.weights.h5")
    # Published in the repository: gzip (lossless) keeps Burda's model under 5 MB.
    # Keras writes a plain file aside; only its compressed copy goes in place.
    with tempfile.TemporaryDirectory() as scratch:
        plain = os.path.join(scratch, "plain.weights.h5")
        save_weights(vae, plain)
        atomic_write(weights_file, lambda out: gzip_copy(plain, out), suffix=".weights.h5")
    print(f"saved {weights_file}")
    started = time.perf_counter()
    log_px, elbos = importance_sampled_log_likelihood(
        vae, x_test, k=args.k, seed=args.seed, return_elbo=True
    )
    nll, nll_se = mean_and_standard_error(-log_px)
    elbo, elbo_se = mean_and_standard_error(elbos)
    evaluation_seconds = time.perf_counter() - started
    relative = os.path.relpath(weights_file, ROOT)
    result = {
        "run": args.run,
        "model": MODELS[run["model"]],
        "k_train": run["k"],
        "epochs": epochs,
        "schedule": describe_schedule(run),
        "batch_size": run["batch_size"],
        "train_digits": len(x_train),
        "backend": keras.backend.backend(),
        "train_seconds": round(sum(timer.seconds), 1),
        "nll": round(nll, 3),
        "nll_se": round(nll_se, 3),
        "elbo": round(elbo, 3),
        "elbo_se": round(elbo_se, 3),
        "test_digits": len(x_test),
        "k_eval": args.k,
        "evaluation_seconds": round(evaluation_seconds, 1),
        "published_nll": run["published"],
        "evaluate": (
            f"python examples/evaluate.py -w {relative} --model {run['model']} "
            f"--k {args.k} --binarize dynamic"
        ),
    }
    with open(os.path.join(args.results, f"{args.run}.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    # The results are saved: only now may the backup go.
    if os.path.exists(timer.path):
        os.remove(timer.path)
    backup.remove()
    print(json.dumps(result, indent=2))
    if not math.isfinite(nll):
        sys.exit(1)


if __name__ == "__main__":
    main()
