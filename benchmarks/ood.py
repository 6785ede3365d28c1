"""Out-of-distribution benchmark: Fashion-MNIST against MNIST, both ways, with every score.

For an in-distribution set (`fashion_mnist` or `mnist`) it trains two
models on its 60,000 training images, dynamically binarized (drawn afresh
every epoch):

  ood_<set>              Burda et al.'s 784-200-200-50 tanh MLP VAE, Bernoulli
                         logits, Adam 1e-3, batch 100;
  ood_<set>_background   the same, trained on images with --perturb of their
                         pixels replaced by coin flips each epoch (Ren et al.
                         2019's background model of the likelihood ratio).

The MLP rather than the conv VAE: it reaches a published likelihood (NLL
87.06 on MNIST, benchmarks/results/burda_vae_k1.json) and scores ten times
as fast, which pays for the likelihood regret on thousands of images. Each
model backs up every epoch to ~/quality-runs/<run>/ (--resume continues), and
its weights go gzip-compressed to benchmarks/results/<run>.weights.h5, with
the record that lets examples/score.py rebuild it.

Then it scores both test sets (all 10,000 images of each) under the model
with examples/score.py, the other set out of distribution, and the
likelihood regret on all of them too (or on a seeded random --regret-samples
of each); and writes
benchmarks/results/ood_<set>.json: the AUROC, AUPRC and FPR at 95% TPR of
every score (input complexity with PNG and with LZMA as its compressor), the
times, and the score.py commands that recompute them. score.py's files stay
in ~/quality-runs/ood_<set>_scored/, so a run stopped after scoring does not
score again.

    python benchmarks/ood.py fashion_mnist --mnist ../shared/data/mnist --fashion DIR
    python benchmarks/ood.py mnist --mnist ../shared/data/mnist --fashion DIR --resume
    python benchmarks/ood.py fashion_mnist ... --epochs 2 --train-samples 2000 \\
        --test-samples 300 --k 50 --results /tmp/smoke   # a smoke test
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from vae import cli  # argparse only: Keras is not imported yet

SETS = ("fashion_mnist", "mnist")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("set", choices=SETS, help="the in-distribution set")
    parser.add_argument("--mnist", required=True, metavar="DIR", help="MNIST's IDX files")
    parser.add_argument("--fashion", required=True, metavar="DIR", help="Fashion-MNIST's IDX files")
    parser.add_argument(
        "--epochs",
        type=cli.positive(1),
        default=100,
        help="training epochs of each model (default %(default)s)",
    )
    parser.add_argument(
        "--perturb",
        type=float,
        default=0.2,
        help="the background model's fraction of noise pixels (default "
        "%(default)s, in Ren et al.'s range 0.1-0.3)",
    )
    parser.add_argument(
        "--k",
        type=cli.positive(1),
        default=1000,
        help="importance samples per image (default %(default)s, Xiao et al.'s)",
    )
    parser.add_argument(
        "--regret-samples",
        type=cli.positive(2),
        metavar="N",
        help="compute the likelihood regret on a seeded random N images of each "
        "test set only (default: on all that are scored)",
    )
    parser.add_argument("--train-samples", type=cli.positive(1), metavar="M")
    parser.add_argument(
        "--test-samples",
        type=cli.positive(2),
        metavar="N",
        help="score a seeded random N of each test set (default all)",
    )
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--checkpoint-dir", default=os.path.expanduser("~/quality-runs"))
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--backend",
        choices=sorted(cli.BACKENDS),
        default="tensorflow",
        help="Keras backend of training (default %(default)s)",
    )
    parser.add_argument(
        "--score-backend",
        choices=sorted(cli.BACKENDS),
        default="jax",
        help="Keras backend of scoring (default %(default)s: the likelihood "
        "regret is vectorised there, and the MLP's NLL scan fastest)",
    )
    args = parser.parse_args(argv)
    cli.choose_backend(parser, args.backend)
    return args


def _train(args, data, run, perturb):
    """Trains one model (or resumes it) and saves its compressed weights; returns seconds."""
    import keras
    from quality import EpochSeconds, gzip_copy

    from vae.atomic import atomic_write
    from vae.data import DynamicBinarization, binarize, load_images
    from vae.models import BURDA_MLP, build_mlp_vae
    from vae.safeguards import StopOnNonFiniteLoss, TrainingBackup
    from vae.weights import save_weights

    weights_file = os.path.join(args.results, f"{run}.weights.h5")
    backup_dir = os.path.join(args.checkpoint_dir, run)
    timer = EpochSeconds(backup_dir)
    if os.path.exists(weights_file) and not os.path.exists(timer.path):
        print(f"{run}: {weights_file} exists, training skipped")
        return None
    images = load_images(data, args.set)
    x_train = images.x_train.reshape(len(images.x_train), -1)[: args.train_samples]
    x_test = binarize(images.x_test.reshape(len(images.x_test), -1), "dynamic")
    keras.utils.set_random_seed(args.seed)
    _, _, vae = build_mlp_vae(**BURDA_MLP, seed=args.seed)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    backup = TrainingBackup(backup_dir)
    if backup.completed_epochs() is not None and not args.resume:
        sys.exit(f"ood.py: error: {backup_dir} holds an unfinished run; add --resume, or delete it")
    train = DynamicBinarization(x_train, 100, seed=args.seed, perturb=perturb)
    print(f"{run}: {len(x_train)} images, {args.epochs} epochs, perturb {perturb}")
    vae.fit(
        train,
        epochs=args.epochs,
        validation_data=(x_test, None),
        verbose=2,
        validation_freq=10,
        callbacks=[StopOnNonFiniteLoss(), backup, timer.callback()],
    )
    vae.binarization = "dynamic"
    os.makedirs(args.results, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        plain = os.path.join(scratch, "plain.weights.h5")
        save_weights(vae, plain)
        atomic_write(weights_file, lambda out: gzip_copy(plain, out), suffix=".weights.h5")
    seconds = round(sum(timer.seconds), 1)
    with open(os.path.join(args.results, f"{run}.train.json"), "w") as f:
        json.dump(
            {
                "run": run,
                "epochs": args.epochs,
                "perturb": perturb,
                "train_images": len(x_train),
                "train_seconds": seconds,
            },
            f,
            indent=2,
        )
    os.remove(timer.path)
    backup.remove()
    return seconds


def _score(command, out):
    """Runs examples/score.py into `out`, unless it already has; returns its ood.json."""
    if not os.path.exists(os.path.join(out, "ood.json")):
        subprocess.run([sys.executable, *command, "--out", out], check=True, cwd=ROOT)
    with open(os.path.join(out, "ood.json")) as f:
        return json.load(f)


def _compressors(args, paths, other, scored):
    """input_complexity's AUROC with each lossless compressor, from score.py's own NLLs.

    The images are rebuilt as score.py scored them (the same subset and
    binarization), and L(x) is measured with PNG and with LZMA.
    """
    import csv
    from argparse import Namespace

    import numpy as np

    from vae.scores import COMPRESSORS, compressed_bits, ood_metrics
    from vae.scoring import _load, load_scoring_model

    options = Namespace(
        model=None,
        latent_dim=None,
        mse=False,
        binarize=None,
        seed=args.seed,
        dataset=None,
        image_size=None,
        test_samples=args.test_samples,
        scores=["nll"],
    )
    vae, _ = load_scoring_model(options, os.path.join(args.results, f"ood_{args.set}.weights.h5"))
    values = {}
    for which, csv_name, data_set in (
        ("reference", "reference_scores.csv", args.set),
        ("data", "scores.csv", other),
    ):
        options.dataset = data_set
        x, _ = _load(options, paths[data_set], vae)
        with open(os.path.join(scored, csv_name), newline="") as f:
            nll = np.array([float(row["nll"]) for row in csv.DictReader(f)])
        dimensions = x.shape[1] if x.ndim == 2 else np.prod(x.shape[1:])
        values[which] = {
            c: (nll / np.log(2) - compressed_bits(x, c)) / dimensions for c in COMPRESSORS
        }
    return {c: ood_metrics(values["reference"][c], values["data"][c]) for c in COMPRESSORS}


def main(argv=None):
    args = parse_args(argv)
    from vae.scores import COMPRESSORS

    paths = {"mnist": args.mnist, "fashion_mnist": args.fashion}
    other = next(s for s in SETS if s != args.set)
    run = f"ood_{args.set}"
    for name, perturb in ((run, 0.0), (f"{run}_background", args.perturb)):
        _train(args, paths[args.set], name, perturb)
    seconds = {}
    for name in (run, f"{run}_background"):
        with open(os.path.join(args.results, f"{name}.train.json")) as f:
            seconds[name] = json.load(f)["train_seconds"]

    def relative(path):
        # Beside the checkout (../shared/...) relative, elsewhere (/usr/share/...) absolute.
        path = os.path.relpath(path, ROOT)
        return os.path.abspath(os.path.join(ROOT, path)) if path.startswith("../..") else path

    weights = {
        name: relative(os.path.join(args.results, f"{name}.weights.h5"))
        for name in (run, f"{run}_background")
    }
    base = [
        "examples/score.py",
        "-w",
        weights[run],
        "--data",
        relative(paths[other]),
        "--dataset",
        other,
        "--reference",
        relative(paths[args.set]),
        "--background",
        weights[f"{run}_background"],
        "--k",
        str(args.k),
        "--seed",
        str(args.seed),
        "--backend",
        args.score_backend,
    ]
    full = base + (["--test-samples", str(args.test_samples)] if args.test_samples else [])
    regret = None
    if args.regret_samples:
        regret = base + [
            "--scores",
            "likelihood_regret",
            "--test-samples",
            str(args.regret_samples),
        ]
    else:
        full.append("--regret")
    # score.py's files are kept beside the backups: a run stopped after
    # scoring writes its results again without scoring anew.
    scored = os.path.join(args.checkpoint_dir, f"{run}_scored")
    scores = _score(full, os.path.join(scored, "full"))
    if regret:
        scores.update(_score(regret, os.path.join(scored, "regret")))
    with open(os.path.join(scored, "full", "summary.json")) as f:
        summary = json.load(f)
    compressors = _compressors(args, paths, other, os.path.join(scored, "full"))
    # score.py's input_complexity is the default compressor's (LZMA), from
    # the same NLLs and images as here.
    scores["input_complexity"] = compressors[COMPRESSORS[0]]
    timings, counts = summary["score_seconds"], summary["counts"]
    if regret:
        with open(os.path.join(scored, "regret", "summary.json")) as f:
            timings["likelihood_regret"] = json.load(f)["score_seconds"]["likelihood_regret"]
    result = {
        "in": args.set,
        "out": other,
        "model": "784-200-200-50 tanh MLP VAE, Bernoulli logits, dynamically binarized images",
        "test_images": {
            "in": counts["reference"],
            "out": counts["data"],
            "likelihood_regret": args.regret_samples or counts["data"],
        },
        "k": args.k,
        "perturb": args.perturb,
        "epochs": args.epochs,
        "backend": {"training": args.backend, "scoring": args.score_backend},
        "scores": {
            name: {metric: round(value, 4) for metric, value in metrics.items()}
            for name, metrics in scores.items()
        },
        "input_complexity_by_compressor": {
            name: {metric: round(value, 4) for metric, value in metrics.items()}
            for name, metrics in compressors.items()
        },
        "train_seconds": seconds,
        "score_seconds": timings,
        "weights": weights,
        "score_command": "python " + " ".join(full + ["--out", "DIR"]),
    }
    if regret:
        result["regret_command"] = "python " + " ".join(regret + ["--out", "DIR"])
    path = os.path.join(args.results, f"{run}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
