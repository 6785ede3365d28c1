"""A folder of one photograph saved in every Pillow mode a folder can hold, and its pixels."""

import numpy as np
from PIL import Image


def write_every_pillow_mode(folder, rgb):
    """Saves `rgb` (uint8, (h, w, 3)) as L, LA, P, RGBA, 16-bit grey, CMYK and
    EXIF-turned files in `folder`, beside two files that are not images.

    Returns `{file name: the RGB pixels a reader must give}`. The JPEGs (CMYK
    and turned) are lossy: theirs are the photograph itself, to be met closely,
    not exactly.
    """
    folder.mkdir(parents=True, exist_ok=True)
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    as_rgb = np.repeat(grey[..., None], 3, axis=2)  # a grey image in a colour set
    Image.fromarray(grey).save(folder / "l.png")
    Image.fromarray(np.dstack([grey, np.full_like(grey, 77)]), "LA").save(folder / "la.png")
    palette = Image.fromarray(rgb).quantize(64)
    palette.save(folder / "p.png")
    palette_rgb = np.asarray(palette.getpalette(), np.uint8).reshape(-1, 3)[np.asarray(palette)]
    Image.fromarray(np.dstack([rgb, np.full_like(grey, 9)]), "RGBA").save(folder / "rgba.png")
    sixteen = grey.astype(np.uint16) * 257 + 100
    Image.fromarray(sixteen).save(folder / "sixteen.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=100)
    # Stored turned a quarter to the right, with the EXIF tag saying "turn it back"
    # (orientation 6: rotate 90 degrees clockwise to show).
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(rgb, k=1)).save(folder / "turned.JPG", quality=100, exif=exif)
    (folder / "README.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    assert Image.open(folder / "sixteen.png").mode.startswith("I")
    assert Image.open(folder / "cmyk.jpg").mode == "CMYK"
    # 16 bits scaled to 8, not clipped.
    scaled = np.rint(sixteen / 257).astype(np.uint8)
    return {
        "l.png": as_rgb,
        "la.png": as_rgb,  # alpha dropped
        "p.png": palette_rgb,
        "rgba.png": rgb,
        "sixteen.png": np.repeat(scaled[..., None], 3, axis=2),
        "cmyk.jpg": rgb,
        "turned.JPG": rgb,
    }
