"""Random particle layouts for domain-randomised training pairs: shapes, sizes and arrangements.

A layout is an instance label image (0 = background). Families cover what EM images of
nanoparticles show: spheres and ellipsoids, rods, cubes and faceted polygons,
triangles (tetrahedra and prisms seen from above), hexagonal plates, mixtures of them,
dense touching and overlapping packs, large particles with small satellites, sparse and
crowded fields, and empty fields. Touching particles either keep a 1-px gap (the BAM
annotation convention) or touch directly (EMPS); a particle partly hidden behind
another keeps only its visible part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

_FOUR = ndi.generate_binary_structure(2, 1)

#: Shape families and how often each is drawn.
FAMILIES = {"round": 0.30, "rods": 0.12, "cubes": 0.12, "triangles": 0.08, "hexagons": 0.08, "polygons": 0.10,
            "mixed": 0.20}
#: Arrangements and how often each is drawn.
ARRANGEMENTS = {"sparse": 0.2, "scattered": 0.25, "crowded": 0.2, "packed": 0.2, "satellites": 0.15}


@dataclass(frozen=True)
class Particle:
    """One particle's outline: centre, size, shape."""

    cy: float
    cx: float
    diameter: float  # equivalent diameter of the outline, px
    aspect: float  # minor / major axis, (0, 1]
    facets: int  # 0: ellipse, n >= 3: polygon
    theta: float  # orientation, radians
    phase: float = 0.0  # polygon rotation


def _choice(rng: np.random.Generator, table: dict[str, float]) -> str:
    names = list(table)
    p = np.array([table[n] for n in names], float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def outline(p: Particle, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Boolean footprint of particle ``p`` on the coordinate grids ``yy``, ``xx``."""
    r = p.diameter / 2
    a, b = r / np.sqrt(p.aspect), r * np.sqrt(p.aspect)
    dy, dx = yy - p.cy, xx - p.cx
    u = dx * np.cos(p.theta) + dy * np.sin(p.theta)
    v = -dx * np.sin(p.theta) + dy * np.cos(p.theta)
    if not p.facets:
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    n = p.facets
    circumradius = np.sqrt(2 * np.pi / (n * np.sin(2 * np.pi / n)))  # same area as the unit circle
    apothem = circumradius * np.cos(np.pi / n)
    inside = np.ones(u.shape, bool)
    for phi in p.phase + 2 * np.pi * np.arange(n) / n:
        inside &= (u / a) * np.cos(phi) + (v / b) * np.sin(phi) <= apothem
    return inside


def _shape(family: str, rng: np.random.Generator) -> tuple[float, int]:
    """(aspect, facets) of one particle of ``family``."""
    if family == "mixed":
        family = _choice(rng, {k: v for k, v in FAMILIES.items() if k != "mixed"})
    if family == "round":
        return float(np.clip(1 - abs(rng.normal(0, 0.15)), 0.5, 1)), 0
    if family == "rods":
        return float(rng.uniform(0.15, 0.45)), int(rng.choice([0, 4]))
    if family == "cubes":
        return float(np.clip(1 - abs(rng.normal(0, 0.08)), 0.7, 1)), 4
    if family == "triangles":
        return float(np.clip(1 - abs(rng.normal(0, 0.08)), 0.75, 1)), 3
    if family == "hexagons":
        return float(np.clip(1 - abs(rng.normal(0, 0.08)), 0.75, 1)), 6
    return float(np.clip(1 - abs(rng.normal(0, 0.15)), 0.6, 1)), int(rng.integers(5, 9))


def place(shape: tuple[int, int], particles, *, gap: bool, overlap: float) -> np.ndarray:
    """Instance labels of ``particles`` drawn in order.

    A particle may lie up to ``overlap`` (fraction of its area) behind earlier ones (its
    hidden part is cut off); with ``gap``, touching particles keep a 1-px gap so that the
    4-connected components are the particles. Particles of under 4 visible pixels are skipped.
    """
    h, w = shape
    labels = np.zeros(shape, np.int32)
    label = 0
    for p in particles:
        reach = p.diameter / 2 / np.sqrt(p.aspect) * 1.5 + 2
        y0, y1 = int(max(p.cy - reach, 0)), int(min(p.cy + reach + 1, h))
        x0, x1 = int(max(p.cx - reach, 0)), int(min(p.cx + reach + 1, w))
        if y1 <= y0 or x1 <= x0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = outline(p, yy.astype(np.float32), xx.astype(np.float32))
        if not inside.any():
            continue
        region = labels[y0:y1, x0:x1]
        occupied = ndi.binary_dilation(region > 0, _FOUR) if gap else region > 0
        new = inside & ~occupied
        if new.sum() < (1 - overlap) * inside.sum() - 1e-9 or new.sum() < 4:
            continue
        parts, n = ndi.label(new, _FOUR)
        if n > 1:  # the largest visible piece only
            new = parts == (np.argmax(np.bincount(parts.ravel())[1:]) + 1)
        label += 1
        region[new] = label
    return labels


def random_layout(shape: tuple[int, int], rng: np.random.Generator, *, min_diameter: float = 4.0,
                  max_diameter: float = 90.0, empty_prob: float = 0.04) -> tuple[np.ndarray, dict]:
    """A random particle layout: (instance labels int32, what was drawn).

    The median diameter is log-uniform in [``min_diameter``, ``max_diameter``] px.
    """
    h, w = shape
    info = {"family": _choice(rng, FAMILIES), "arrangement": _choice(rng, ARRANGEMENTS),
            "gap": bool(rng.random() < 0.5)}
    if rng.random() < empty_prob:
        info.update(family="none", arrangement="empty")
        return np.zeros(shape, np.int32), info
    d = float(np.exp(rng.uniform(np.log(min_diameter), np.log(max_diameter))))
    spread = float(rng.uniform(0.05, 0.45))
    arrangement = info["arrangement"]
    coverage = {"sparse": (0.02, 0.1), "scattered": (0.1, 0.3), "crowded": (0.3, 0.55), "packed": (0.45, 0.75),
                "satellites": (0.15, 0.4)}[arrangement]
    coverage = float(rng.uniform(*coverage))
    clustering = {"sparse": 0.0, "scattered": 0.3, "crowded": 0.6, "packed": 0.95, "satellites": 0.9}[arrangement]
    overlap = float(rng.choice([0.0, 0.0, 0.2, 0.4])) if arrangement in ("crowded", "packed") else 0.0
    mean_area = np.pi / 4 * d * d * np.exp(2 * spread**2)
    count = int(np.clip(coverage * h * w / mean_area, 1, 600))
    particles: list[Particle] = []
    centres: list[tuple[float, float, float]] = []
    family = info["family"]
    for k in range(count):
        size = d * float(np.exp(rng.normal(0, spread)))
        if arrangement == "satellites" and k % 4 != 0:
            size = max(min_diameter * 0.75, size * float(rng.uniform(0.1, 0.3)))
        aspect, facets = _shape(family, rng)
        if centres and rng.random() < clustering:
            cy, cx, r0 = centres[int(rng.integers(len(centres)))]
            angle = rng.uniform(0, 2 * np.pi)
            dist = (r0 + size / 2) * float(rng.uniform(0.75 if overlap else 0.95, 1.1))
            cy, cx = cy + np.sin(angle) * dist, cx + np.cos(angle) * dist
        else:
            cy, cx = rng.uniform(-0.05 * h, 1.05 * h), rng.uniform(-0.05 * w, 1.05 * w)
        particles.append(Particle(float(cy), float(cx), size, aspect, facets, float(rng.uniform(0, np.pi)),
                                  float(rng.uniform(0, 2 * np.pi))))
        centres.append((float(cy), float(cx), size / 2))
    if arrangement == "satellites":  # the large ones first, so satellites sit around them
        particles.sort(key=lambda p: -p.diameter)
    info.update(diameter=d, spread=spread, coverage=coverage, overlap=overlap)
    return place(shape, particles, gap=info["gap"], overlap=overlap), info
