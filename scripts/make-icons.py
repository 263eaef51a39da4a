#!/usr/bin/env python3
"""Draws the Keylink app icon (a key whose bow is one link of a chain, on a rounded square)
and writes every size the Tauri bundler needs into icons/, and the UI's header logo to
ui/logo.png.

    pip install pillow && python3 scripts/make-icons.py

Drawn once at 1024 px with 4x supersampling, then scaled down, so every size is anti-aliased.
"""
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 1024
SS = 4  # supersampling factor
OUT = Path(__file__).resolve().parent.parent / "icons"

TOP = (79, 70, 229)       # indigo
BOTTOM = (13, 148, 136)   # teal
KEY = (255, 255, 255)
LINK = (204, 251, 241)    # pale teal


def gradient(size):
    """A diagonal gradient from TOP (upper left) to BOTTOM (lower right)."""
    img = Image.new("RGB", (size, size))
    px = img.load()
    for y in range(size):
        for x in range(size):
            t = (x + y) / (2 * (size - 1))
            px[x, y] = tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM))
    return img


def key_layer(size):
    """The key drawn horizontally (bow on the left), to be rotated into place."""
    s = size / 1024
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)

    def box(cx, cy, r):
        return [(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s]

    # The chain link the bow passes through (drawn first: the key lies on top of it).
    d.ellipse(box(250, 512, 175), outline=LINK, width=round(56 * s))
    # Bow: a ring, the first link of the chain.
    d.ellipse(box(420, 512, 170), outline=KEY, width=round(78 * s))
    # Shaft and bit.
    d.rounded_rectangle([560 * s, 474 * s, 890 * s, 550 * s], radius=24 * s, fill=KEY)
    d.rounded_rectangle([750 * s, 520 * s, 800 * s, 650 * s], radius=14 * s, fill=KEY)
    d.rounded_rectangle([830 * s, 520 * s, 890 * s, 620 * s], radius=14 * s, fill=KEY)
    return layer


def master():
    big = SIZE * SS
    background = gradient(SIZE).resize((big, big), Image.BICUBIC).convert("RGBA")
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        [0, 0, big - 1, big - 1], radius=round(big * 0.22), fill=255
    )
    icon = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    icon.paste(background, (0, 0), mask)
    key = key_layer(big).rotate(35, resample=Image.BICUBIC, center=(big / 2, big / 2))
    # Slightly smaller than the tile, so the key has a margin.
    margin = round(big * 0.06)
    key = key.resize((big - 2 * margin, big - 2 * margin), Image.LANCZOS)
    icon.alpha_composite(key, (margin, margin))
    return icon.resize((SIZE, SIZE), Image.LANCZOS)


def main():
    OUT.mkdir(exist_ok=True)
    icon = master()
    icon.save(OUT / "icon.png")
    for name, px in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256)]:
        icon.resize((px, px), Image.LANCZOS).save(OUT / name)
    icon.save(OUT / "icon.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (256, 256)])
    icon.save(OUT / "icon.icns")
    icon.resize((128, 128), Image.LANCZOS).save(OUT.parent / "ui" / "logo.png")
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(OUT.parent)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
