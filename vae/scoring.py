"""What `examples/score.py` does: score a user's images under a trained model, flag, report.

>>> args = cli.parse_score_args(__doc__)
>>> with workflow.one_line_errors(args):
...     scoring.run(args)

writes into `--out`:

- `scores.csv`: one row per image of `--data`, in input order: `source`
  (the path relative to the folder, or the index in the test split), one
  column per score, `anomalous` with `--reference`, and the latent codes
  `z_mean_0 ... z_mean_{d-1}`;
- with `--reference`: `reference_scores.csv` (the same columns),
  `ood.json` (per score, AUROC, AUPRC and FPR at 95% TPR, `--data` the
  positives), `histograms.png`, `roc.png` and `most_unusual.png`;
- `summary.json`: the counts, thresholds and seconds of every score.
"""

import csv
import json
import os
import sys

import numpy as np

from vae.data import DataError, binarize, load_images_to_score

# A file that records no model: --model's builder and the arguments of the
# scripts that train it (examples/evaluate.py's choices).
_FALLBACK_BUILDERS = {
    "mlp": ("build_mlp_vae", {}),
    "cnn": ("build_cnn_vae", {}),
    "conv": ("build_conv_vae", {}),
    "burda": (
        "build_mlp_vae",
        {
            "intermediate_dim": [200, 200],
            "activation": "tanh",
            "latent_dim": 50,
            "loss": "bce_logits",
        },
    ),
}
_LIKELIHOODS = ("nll", "negative_elbo", "input_complexity", "likelihood_regret", "likelihood_ratio")


def _fallback(args):
    if args.model is None:
        return None
    builder, arguments = _FALLBACK_BUILDERS[args.model]
    arguments = dict(arguments)
    if args.latent_dim:
        arguments["latent_dim"] = args.latent_dim
    if args.mse:
        arguments["loss"] = "mse"
    return {"builder": builder, "arguments": arguments, "binarize": None}


def load_scoring_model(args, path):
    """`(vae, record)` of a weights file, rebuilt from its record (or from `--model`)."""
    from vae.weights import load_model

    _, _, vae, record = load_model(path, fallback=_fallback(args))
    return vae, record


def prepare(args, vae, x, source):
    """The images as the model takes them: checked, flattened for an MLP, binarized as trained.

    Raises:
        DataError: the images do not fit the model (shape, channels), or a
            Bernoulli model is asked for a likelihood of grey levels without
            a binarization.
    """
    from vae.evaluation import is_binary

    wanted = tuple(vae.encoder.input.shape[1:])
    height, width, channels = x.shape[1:]
    if len(wanted) == 1:  # an MLP of flat images: which ones, its record's width says
        side = int(round(wanted[0] ** 0.5))
        wanted_image = (side, side, 1) if side * side == wanted[0] else None
    else:
        wanted_image = wanted
    if wanted_image is not None and wanted_image[2] != channels:
        kinds = {1: "grey", 3: "colour"}
        raise DataError(
            f"data: {source}: the images are {kinds.get(channels, channels)} ({channels} "
            f"channel{'s' * (channels > 1)}) and the model takes "
            f"{kinds.get(wanted_image[2], wanted_image[2])} images ({wanted_image[2]} "
            f"channel{'s' * (wanted_image[2] > 1)}); score images of the kind it trained on"
        )
    if (
        wanted_image is None
        and height * width * channels != wanted[0]
        or (wanted_image is not None and wanted_image[:2] != (height, width))
    ):
        shape = "x".join(map(str, wanted_image[:2])) if wanted_image else f"{wanted[0]} pixels"
        raise DataError(
            f"data: {source}: the images are {height}x{width}x{channels} and the model takes "
            f"{shape}{'x' + str(wanted_image[2]) if wanted_image else ''}; pass --image-size "
            f"{' '.join(map(str, wanted_image[:2])) if wanted_image else 'H W'} to resize them"
        )
    if len(wanted) == 1:
        x = x.reshape(len(x), -1)
    mode = args.binarize or getattr(vae, "binarization", None) or "none"
    if mode != "none":
        return binarize(x, mode, seed=args.seed)
    bernoulli = vae.reconstruction in ("bce", "bce_logits")
    if bernoulli and not is_binary(x) and set(args.scores) & set(_LIKELIHOODS):
        raise DataError(
            f"data: {source}: grey-level images, and a Bernoulli model's likelihood is one of "
            "binary images only; its file records no binarization: pass --binarize dynamic "
            "(or static) as it was trained, or --scores reconstruction_error"
        )
    return x


def _subset(x, sources, size, seed):
    if size is None or size >= len(x):
        return x, sources
    chosen = np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False))
    return x[chosen], [sources[i] for i in chosen]


def _load(args, path, vae):
    x, sources = load_images_to_score(path, args.dataset, args.image_size)
    x, sources = _subset(x, sources, args.test_samples, args.seed)
    return prepare(args, vae, x, path or args.dataset), sources


def _write_csv(path, sources, scores, codes, flags=None):
    names = list(scores)
    header = [
        "source",
        *names,
        *(["anomalous"] if flags is not None else []),
        *(f"z_mean_{i}" for i in range(codes.shape[1])),
    ]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, source in enumerate(sources):
            row = [source, *(repr(float(scores[name][i])) for name in names)]
            if flags is not None:
                row.append(int(flags[i]))
            writer.writerow(row + [repr(float(v)) for v in codes[i]])


def run(args):
    """Scores `--data` (and `--reference`) and writes the files above; returns `ood.json`'s dict."""
    from vae.plotting import plot_most_unusual, plot_roc, plot_score_histograms
    from vae.scores import compute_scores, latent_codes, ood_metrics, threshold

    vae, record = load_scoring_model(args, args.weights)
    background = load_scoring_model(args, args.background)[0] if args.background else None
    x, sources = _load(args, args.data, vae)
    reference = None
    if args.reference:
        reference, reference_sources = _load(args, args.reference, vae)
        if len(reference) < 2:
            raise DataError(
                f"reference: {args.reference}: holds {len(reference)} image; a "
                "threshold needs at least 2 (the more, the better)"
            )
    import keras

    print(
        f"{record['builder']} ({vae.reconstruction} likelihood, images binarized: "
        f"{args.binarize or record.get('binarize') or 'no'}) from {args.weights}; "
        f"{len(x)} images{f', {len(reference)} reference images' if reference is not None else ''}"
        f"; scores {', '.join(args.scores)}; k = {args.k}; {keras.backend.backend()} backend"
    )
    # A progress bar in a terminal; in a log, one line when each step ends.
    verbose = 1 if sys.stdout.isatty() else 2
    timings = {}
    scores = compute_scores(
        vae,
        x,
        args.scores,
        k=args.k,
        background=background,
        compressor=args.compressor,
        seed=args.seed,
        verbose=verbose,
        timings=timings,
    )
    codes = latent_codes(vae, x)
    summary = {"counts": {"data": len(x)}, "score_seconds": timings}
    if reference is None:
        _write_csv(os.path.join(args.out, "scores.csv"), sources, scores, codes)
        _write_json(os.path.join(args.out, "summary.json"), summary)
        print(f"wrote {os.path.join(args.out, 'scores.csv')}")
        return None
    reference_timings = {}
    reference_scores = compute_scores(
        vae,
        reference,
        args.scores,
        k=args.k,
        background=background,
        compressor=args.compressor,
        seed=args.seed + 1,
        verbose=verbose,
        timings=reference_timings,
    )
    for name, seconds in reference_timings.items():
        timings[name] = round(timings[name] + seconds, 1)
    thresholds = {name: threshold(reference_scores[name], args.fpr) for name in args.scores}
    flags = scores[args.flag_score] > thresholds[args.flag_score]
    reference_flags = reference_scores[args.flag_score] > thresholds[args.flag_score]
    _write_csv(os.path.join(args.out, "scores.csv"), sources, scores, codes, flags)
    _write_csv(
        os.path.join(args.out, "reference_scores.csv"),
        reference_sources,
        reference_scores,
        latent_codes(vae, reference),
        reference_flags,
    )
    metrics = {name: ood_metrics(reference_scores[name], scores[name]) for name in args.scores}
    _write_json(os.path.join(args.out, "ood.json"), metrics)
    summary["counts"]["reference"] = len(reference)
    summary.update(
        thresholds=thresholds, fpr=args.fpr, flag_score=args.flag_score, flagged=int(flags.sum())
    )
    _write_json(os.path.join(args.out, "summary.json"), summary)
    plot_score_histograms(
        reference_scores, scores, os.path.join(args.out, "histograms.png"), show=args.show
    )
    plot_roc(reference_scores, scores, os.path.join(args.out, "roc.png"), show=args.show)
    plot_most_unusual(
        x,
        scores[args.flag_score],
        os.path.join(args.out, "most_unusual.png"),
        args.flag_score,
        show=args.show,
    )
    _print_table(metrics)
    print(
        f"{int(flags.sum())} of {len(x)} images flagged anomalous by {args.flag_score} "
        f"(above {thresholds[args.flag_score]:.4g}, the reference's {1 - args.fpr:.0%} "
        f"quantile); wrote {args.out}"
    )
    return metrics


def _write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def _print_table(metrics):
    print(f"{'score':<22} {'AUROC':>7} {'AUPRC':>7} {'FPR95':>7}")
    for name, m in metrics.items():
        print(f"{name:<22} {m['auroc']:>7.4f} {m['auprc']:>7.4f} {m['fpr95']:>7.4f}")
