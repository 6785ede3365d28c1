"""Training from a folder against training from memory, and the peak memory of a big folder's run.

`speed`: for each image size, a folder of photo crops (scripts/make_photo_crops.py)
trains the image VAE (`vae.build_image_vae`) for `--epochs` epochs twice, each
in a process of its own and taking turns round by round: from the folder
(`vae.folders.ImageFolder`, decoded a batch at a time by two threads), and
from an in-memory float32 array of the same images decoded beforehand. It
prints the images per second of each (the median over the epochs after the
first), their ratio, the training arithmetic that this speed is (three
forward passes' multiply-adds per image, as benchmarks/throughput.py counts)
and the same model's forward pass alone, timed with `predict_on_batch`: the
speed that its convolutions reach on this machine.

`memory`: runs `examples/vae_images.py --data FOLDER --image-size S S --epochs 1`
as a user does and prints its peak resident memory (the kernel's count for
the child process).

The crop folders are written once to `--crops` (default ~/quality-runs/crops),
outside the work tree, and reused.

    python benchmarks/folders.py speed --sizes 64 128
    python benchmarks/folders.py --backend jax speed --sizes 64
    python benchmarks/folders.py speed --sizes 128 --images 1024
    python benchmarks/folders.py memory --size 64 --images 100000
    python benchmarks/folders.py memory --size 128 --images 30000
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

BATCH_SIZE = 64
SPEED_IMAGES = {64: 2048, 128: 512}


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crops", type=Path, default=Path("~/quality-runs/crops").expanduser())
    parser.add_argument("--backend", default="tensorflow")
    sub = parser.add_subparsers(dest="part", required=True)
    speed = sub.add_parser("speed")
    speed.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    speed.add_argument("--epochs", type=int, default=3)
    speed.add_argument("--rounds", type=int, default=2)
    speed.add_argument(
        "--images", type=int, help=f"crops per size (default: {SPEED_IMAGES}, by size)"
    )
    memory = sub.add_parser("memory")
    memory.add_argument("--size", type=int, default=64)
    memory.add_argument("--images", type=int, default=100_000)
    worker = sub.add_parser("worker")
    worker.add_argument("source", choices=["folder", "memory"])
    worker.add_argument("--size", type=int)
    worker.add_argument("--images", type=int)
    worker.add_argument("--epochs", type=int)
    return parser.parse_args()


def crop_folder(crops, size, images):
    """The folder of `images` crops of `size`, written once (in ~4 ms a crop)."""
    from make_photo_crops import write_crops

    folder = crops / f"{size}px_{images}"
    done = folder / "complete"
    if not done.exists():
        started = time.perf_counter()
        write_crops(folder, images, size, seed=0)
        done.write_text(f"{time.perf_counter() - started:.0f} s\n")
    return folder


def training_macs(model):
    """Multiply-adds of one image's training step: three forward passes of every product."""
    from throughput import forward_macs

    return 3 * (forward_macs(model.encoder) + forward_macs(model.decoder))


def worker(args):
    import keras
    import numpy as np

    from vae.folders import ImageFolder, image_files, read_images
    from vae.models import build_image_vae

    files, _, _ = image_files(crop_folder(args.crops, args.size, args.images))
    keras.utils.set_random_seed(0)
    _, _, vae = build_image_vae((args.size, args.size, 3), seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    if args.source == "folder":
        train = ImageFolder(
            files, BATCH_SIZE, seed=0, workers=2, image_shape=(args.size,) * 2 + (3,)
        )
        fit = dict(x=train)
    else:
        x = read_images(files, range(len(files)), None)
        fit = dict(x=x, batch_size=BATCH_SIZE, shuffle=True)

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    seconds = []
    vae.fit(**fit, epochs=args.epochs, verbose=0, callbacks=[Timer()])
    batch = np.random.default_rng(0).random((BATCH_SIZE, args.size, args.size, 3), np.float32)
    forward = []
    for _ in range(6):
        started = time.perf_counter()
        vae.predict_on_batch(batch)
        forward.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "epoch_seconds": seconds,
                "images": len(files),
                "training_macs": training_macs(vae),
                "forward_seconds_per_image": statistics.median(forward[1:]) / BATCH_SIZE,
            }
        )
    )


def _run_worker(args, source, size):
    command = [sys.executable, __file__, "--crops", str(args.crops), "worker", source]
    command += [
        "--size",
        str(size),
        "--images",
        str(args.images or SPEED_IMAGES[size]),
        "--epochs",
        str(args.epochs),
    ]
    env = {**os.environ, "KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def speed(args):
    from throughput import machine_peak_gflops

    peak = machine_peak_gflops()
    print(
        f"{args.backend} backend; NumPy's float32 products {peak:.0f} GFLOP/s; batch {BATCH_SIZE}"
    )
    print("| size | images | source | images/s | training GFLOP/s | forward GFLOP/s | vs memory |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        crop_folder(args.crops, size, args.images or SPEED_IMAGES[size])
        epochs = {"folder": [], "memory": []}
        for round_ in range(args.rounds):
            for source in ("folder", "memory") if round_ % 2 == 0 else ("memory", "folder"):
                result = _run_worker(args, source, size)
                epochs[source] += result["epoch_seconds"][1:]  # the first compiles
        rate = {s: result["images"] / statistics.median(e) for s, e in epochs.items()}
        flops = 2 * result["training_macs"]
        forward = 2 * result["training_macs"] / 3 / result["forward_seconds_per_image"]
        for source in ("memory", "folder"):
            print(
                f"| {size}x{size} | {result['images']} | {source} | {rate[source]:.1f} | "
                f"{rate[source] * flops / 1e9:.0f} | {forward / 1e9:.0f} | "
                f"{rate[source] / rate['memory']:.3f} |"
            )


def memory(args):
    folder = crop_folder(args.crops, args.size, args.images)
    out = args.crops / f"run_{args.size}px_{args.images}"
    command = [
        sys.executable,
        str(ROOT / "examples" / "vae_images.py"),
        "--data",
        str(folder),
        "--image-size",
        str(args.size),
        str(args.size),
        "--epochs",
        "1",
        "--backend",
        args.backend,
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode:
        sys.exit(completed.stderr[-3000:])
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9
    lines = [line for line in completed.stdout.splitlines() if "found" in line or "bits" in line]
    print("\n".join(lines))
    print(
        f"| {args.size}x{args.size} | {args.images} | {args.backend} | {seconds / 60:.1f} min | "
        f"{peak_gb:.2f} GB |"
    )


def main():
    args = parse_args()
    {"speed": speed, "memory": memory, "worker": worker}[args.part](args)


if __name__ == "__main__":
    main()
