"""Overlay pictures of labels on images (numpy + PIL; for the CLI, docs and reports)."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries


def label_colors(n: int, seed: int = 7) -> np.ndarray:
    """``n + 1`` bright RGB colours (uint8); colour 0 is black for the background."""
    rng = np.random.default_rng(seed)
    hsv_h = rng.uniform(0, 1, n + 1)
    import colorsys

    cols = np.array([colorsys.hsv_to_rgb(h, 0.85, 1.0) for h in hsv_h]) * 255
    cols[0] = 0
    return cols.astype(np.uint8)


def overlay(image: np.ndarray, labels: np.ndarray, *, alpha: float = 0.25, info_bar=None) -> np.ndarray:
    """RGB uint8 picture: the grey image with each particle tinted and outlined.

    ``info_bar`` (an :class:`~napari_nanogan.io.infobar.InfoBar`, optional): the rows left out of the
    segmentation are dimmed and a yellow line marks where they start.
    """
    grey = np.asarray(image, np.float32)
    lo, hi = np.percentile(grey, [0.5, 99.5])
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0, 1) * 255
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    colors = label_colors(int(labels.max())).astype(np.float32)
    inside = labels > 0
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * colors[labels[inside]]
    edges = find_boundaries(labels, mode="inner")
    rgb[edges] = colors[labels[edges]]
    if info_bar is not None:
        n = rgb.shape[0]
        start, stop, _ = info_bar.specimen_rows.indices(n)
        outside = np.ones(n, bool)
        outside[start:stop] = False
        rgb[outside] *= 0.5
        for row in (start - 1, stop):  # the line between specimen and info bar
            if 0 <= row < n:
                rgb[row] = (255, 220, 0)
    return rgb.astype(np.uint8)


def nice_length(target: float) -> float:
    """The 1, 2 or 5 times a power of ten nearest below ``target`` (> 0): a scale bar's length."""
    power = 10 ** np.floor(np.log10(target))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))


def captioned(picture: np.ndarray, text: str, *, pixel_size_nm: float | None = None) -> np.ndarray:
    """``picture`` (RGB uint8) with a strip below it: ``text`` on the left and, with
    ``pixel_size_nm``, a scale bar of a round length (about a fifth of the width) on the right.
    Nothing of the picture is covered."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = picture.shape[:2]
    size = max(11, min(w // 60, 28))
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: its small bitmap font
        font = ImageFont.load_default()
    strip = int(size * 2.0)
    canvas = Image.new("RGB", (w, h + strip), (255, 255, 255))
    canvas.paste(Image.fromarray(picture), (0, 0))
    draw = ImageDraw.Draw(canvas)
    pad = size // 2
    right = w - pad
    top = h + (strip - size) // 2  # the text's top
    gap = max(draw.textlength(" ", font=font), size / 3)  # (the bundled font's space nearly vanishes at small sizes)

    def width(line: str) -> float:
        words = line.split(" ")
        return sum(draw.textlength(word, font=font) for word in words) + gap * (len(words) - 1)

    def write(x: float, line: str) -> None:
        for word in line.split(" "):
            draw.text((x, top), word, fill=(0, 0, 0), font=font)
            x += draw.textlength(word, font=font) + gap

    if pixel_size_nm:
        nm = nice_length(w * pixel_size_nm / 5)
        length = round(nm / pixel_size_nm)
        label = f"{nm:g} nm"  # in nm always: the bundled font has no µ
        label_width = width(label)
        y = h + strip // 2
        x1 = right - label_width - pad
        draw.rectangle([x1 - length, y - max(2, size // 6), x1, y + max(2, size // 6)], fill=(0, 0, 0))
        write(right - label_width, label)
        right = x1 - length - 2 * pad
    while text and width(text) > right - pad:  # shorten what does not fit
        text = text[:-4].rstrip() + "..." if len(text) > 4 else ""  # ASCII: Pillow's bitmap font has no "…"
    write(pad, text)
    return np.asarray(canvas)


def overlay_caption(count: int, model: str | None, *, info_bar: bool = False, note: str = "") -> str:
    """The caption of a segmentation's overlay: how many particles, by which model, what the yellow line is."""
    parts = [f"{count} particle" + ("" if count == 1 else "s") + (f" {note}" if note else "")]
    if model:
        parts.append(f"model {model}")
    if info_bar:
        parts.append("below the yellow line: the info bar, left out")
    return "; ".join(parts)
