"""Things in EM images and figures that are not particles: text, scale bars, arrows, panel letters, frames, info bars.

Drawn over a rendered image; the pixels they cover are background in the labels (an
annotator would not call a letter "o" a particle, nor the particle half under it).
"""

from __future__ import annotations

import numpy as np

_WORDS = ["a", "b", "c", "d", "(a)", "(b)", "(c)", "A", "B", "C", "i", "ii", "50 nm", "100 nm", "200 nm", "20 nm",
          "500 nm", "1 µm", "2 µm", "5 nm", "10 nm", "SEM", "TEM", "HAADF", "x50k", "Mag = 50.00 K X", "WD = 4 mm",
          "EHT = 20.00 kV", "Signal A = InLens", "Au", "Ag", "TiO2", "Fe3O4", "0.24 nm", "(111)", "#3", "S-4800"]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def draw_distractors(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
    """(image, labels, kinds drawn): 1-4 distractors over ``image`` (uint8); labels cleared beneath them."""
    from PIL import Image, ImageDraw

    h, w = image.shape
    canvas = Image.fromarray(image)
    ink = Image.new("L", (w, h), 0)  # where something was drawn
    draw, mark = ImageDraw.Draw(canvas), ImageDraw.Draw(ink)
    kinds = []
    for _ in range(int(rng.integers(1, 5))):
        kind = str(rng.choice(["text", "scale bar", "arrow", "frame", "info bar", "letter"],
                              p=[0.3, 0.25, 0.15, 0.08, 0.07, 0.15]))
        light = rng.random() < 0.6
        colour, outline = (255, 0) if light else (0, 255)
        if kind in ("text", "letter"):
            size = int(rng.integers(10, 42 if kind == "letter" else 30))
            word = str(rng.choice(_WORDS[:10] if kind == "letter" else _WORDS))
            x, y = int(rng.integers(0, max(w - size, 1))), int(rng.integers(0, max(h - size, 1)))
            font = _font(size)
            if rng.random() < 0.4:  # a box behind the text, as in many figures
                box = draw.textbbox((x, y), word, font=font)
                draw.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], fill=outline)
                mark.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], fill=255)
            draw.text((x, y), word, fill=colour, font=font)
            mark.text((x, y), word, fill=255, font=font)
        elif kind == "scale bar":
            length, thick = int(rng.integers(max(8, w // 10), max(9, w // 3))), int(rng.integers(2, 9))
            x, y = int(rng.integers(0, max(w - length, 1))), int(rng.integers(thick, max(h - thick, thick + 1)))
            draw.rectangle([x, y, x + length, y + thick], fill=colour)
            mark.rectangle([x, y, x + length, y + thick], fill=255)
            if rng.random() < 0.7:
                size = int(rng.integers(10, 24))
                word = str(rng.choice(_WORDS[12:22]))
                draw.text((x, max(y - size - 2, 0)), word, fill=colour, font=_font(size))
                mark.text((x, max(y - size - 2, 0)), word, fill=255, font=_font(size))
        elif kind == "arrow":
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            angle, length, width = rng.uniform(0, 2 * np.pi), rng.uniform(15, 60), int(rng.integers(1, 5))
            x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
            head = [(x1, y1), (x1 - 10 * np.cos(angle - 0.4), y1 - 10 * np.sin(angle - 0.4)),
                    (x1 - 10 * np.cos(angle + 0.4), y1 - 10 * np.sin(angle + 0.4))]
            for d in (draw, mark):
                d.line([(x0, y0), (x1, y1)], fill=colour if d is draw else 255, width=width)
                d.polygon(head, fill=colour if d is draw else 255)
        elif kind == "frame":
            width = int(rng.integers(1, 6))
            for d in (draw, mark):
                d.rectangle([0, 0, w - 1, h - 1], outline=colour if d is draw else 255, width=width)
        else:  # an info bar along the bottom: flat, with text
            rows = int(rng.integers(max(8, h // 14), max(9, h // 7)))
            fill = int(rng.choice([0, 20, 40, 230, 255]))
            draw.rectangle([0, h - rows, w, h], fill=fill)
            mark.rectangle([0, h - rows, w, h], fill=255)
            size = max(8, rows // 2)
            draw.text((int(rng.integers(2, max(3, w // 3))), h - rows + 2), str(rng.choice(_WORDS[20:])),
                      fill=255 - fill, font=_font(size))
        kinds.append(kind)
    covered = np.asarray(ink) > 0
    labels = np.where(covered, 0, labels)
    return np.asarray(canvas).copy(), labels, kinds
