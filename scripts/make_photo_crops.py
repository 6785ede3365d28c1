"""Writes a folder of N square crops of the colour photographs scikit-image and scikit-learn ship.

The photographs need no download: scikit-image's astronaut, chelsea,
coffee, rocket, hubble_deep_field, retina and immunohistochemistry, and
scikit-learn's china and flower (``load_sample_images``). Crop ``i`` takes
one of them, a square of a random side between SIZE and the photograph's
shorter side at a random place, mirrored half the time, resized to SIZE x
SIZE with Pillow's Lanczos filter (photographs shorter than SIZE are left
out). The crops are a function of ``--seed``
alone, so the folder can be made again anywhere.

Usage:
    python scripts/make_photo_crops.py OUT --count 1000 --size 64
    python scripts/make_photo_crops.py OUT --count 100000 --size 64 --format jpg
"""

import argparse
from pathlib import Path

import numpy as np

SKIMAGE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
)


def photographs():
    """The shipped colour photographs: uint8 (h, w, 3) arrays, by name."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    sklearn_photos = load_sample_images()
    for name, image in zip(sklearn_photos.filenames, sklearn_photos.images):
        photos[Path(name).stem] = image
    return photos


def crops(count, size, seed=0):
    """`count` uint8 (size, size, 3) crops, drawn as the module says; a generator."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = [photo for photo in photographs().values() if min(photo.shape[:2]) >= size]
    if not photos:
        raise ValueError(f"no shipped photograph is {size} pixels on its shorter side")
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        height, width = photo.shape[:2]
        side = int(rng.integers(size, min(height, width) + 1))
        top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        crop = crop.resize((size, size), Image.Resampling.LANCZOS)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        yield np.asarray(crop)


def write_crops(out, count, size, seed=0, image_format="png"):
    """Writes ``crop_000000.png`` ... into `out` (made if absent); returns their paths."""
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digits = max(6, len(str(count - 1)))
    paths = []
    for i, crop in enumerate(crops(count, size, seed)):
        path = out / f"crop_{i:0{digits}d}.{image_format}"
        Image.fromarray(crop).save(path, **({"quality": 95} if image_format == "jpg" else {}))
        paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write the crops into")
    parser.add_argument("--count", type=int, default=1000, help="crops (default %(default)s)")
    parser.add_argument("--size", type=int, default=64, help="side in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("png", "jpg"), default="png")
    args = parser.parse_args()
    if args.count < 1 or args.size < 1:
        parser.error("--count and --size must be positive")
    write_crops(args.out, args.count, args.size, args.seed, args.format)
    print(f"wrote {args.count} crops of {args.size}x{args.size} to {args.out}")


if __name__ == "__main__":
    main()
