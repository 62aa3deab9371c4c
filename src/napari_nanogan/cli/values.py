"""The types of the commands' flags: each parses one value, or says in argparse's words why it cannot."""

from __future__ import annotations

import argparse
import math
import sys


def count_value(text: str) -> int:
    """A whole number >= 1 (``--n``)."""
    return _whole(text, 1)


def whole_value(text: str) -> int:
    """A whole number >= 0 (``finetune --gan-steps``)."""
    return _whole(text, 0)


def _whole(text: str, least: int) -> int:
    return _checked(text, int, lambda v: v >= least, f"a whole number >= {least}", f"at least {least}")


def _checked(text: str, convert, ok, expected: str, must: str, typed: bool = False):
    """``convert(text)`` where ``ok`` of it, else argparse's error: "expected <expected>, not 'text'" for what
    does not convert, "must be <must>, not <value>" for what is out of range (the text as typed, if ``typed``)."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {must}, not {text if typed else value}")
    return value


def positive_value(text: str) -> float:
    """A finite number > 0 (pixel sizes, diameters)."""
    return _checked(text, float, lambda v: math.isfinite(v) and v > 0, "a number > 0", "a finite number > 0",
                    typed=True)


def probability_value(text: str) -> float:
    """A number from 0 to 1 (``--min-confidence``)."""
    return _checked(text, float, lambda v: 0 <= v <= 1, "a number from 0 to 1", "from 0 to 1", typed=True)


#: Seeds are whole numbers 0 .. SEED_MAX (each image's seed, ``seed * 100003 + k``, stays in 64 bits).
SEED_MAX = 2**40


#: Pixel sizes (nm) outside this range are no electron micrograph's: a unit slip, most likely.
PLAUSIBLE_PIXEL_NM = (0.01, 100_000.0)


class Length(float):
    """A length in nm parsed from a flag, and whether it was typed without its unit (``unitless``)."""

    unitless = False


def scale_bar_value(text: str) -> float:
    """A scale bar's length (``--scale-bar``): a length with its unit, in nm (a bare number is nm; the command
    warns of it, :class:`Length`'s ``unitless``)."""
    from ..io.scalebar import length_is_unitless, parse_length_nm

    try:
        nm = Length(parse_length_nm(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    nm.unitless = length_is_unitless(text)
    return nm


def pixel_size_value(text: str) -> float:
    """A pixel size in nm (``--pixel-size``): a finite number > 0; one outside
    ``PLAUSIBLE_PIXEL_NM`` is taken, with a warning that names the likely unit slip."""
    from ..io.metadata import PIXEL_SIZE_RANGE_NM

    value = positive_value(text)
    if not PIXEL_SIZE_RANGE_NM[0] <= value <= PIXEL_SIZE_RANGE_NM[1]:
        raise argparse.ArgumentTypeError(f"{text} nm cannot be recorded in the outputs' TIFFs: give a pixel size "
                                         f"from {PIXEL_SIZE_RANGE_NM[0]:g} to {PIXEL_SIZE_RANGE_NM[1]:g} nm")
    low, high = PLAUSIBLE_PIXEL_NM
    if value < low:
        print(f"warning: --pixel-size {text} nm is below any electron micrograph's ({low:g} nm); the value is in "
              f"nm (a pixel of {value:g} µm is --pixel-size {value * 1000:g})", file=sys.stderr)
    elif value > high:
        print(f"warning: --pixel-size {text} nm is {value / 1000:g} µm a pixel, above any electron micrograph's "
              f"({high / 1000:g} µm); the value is in nm (a pixel of {value:g} pm is --pixel-size {value / 1000:g})",
              file=sys.stderr)
    return value


def seed_value(text: str) -> int:
    """A seed: a whole number from 0 to :data:`SEED_MAX`."""
    return _checked(text, int, lambda v: 0 <= v <= SEED_MAX, f"a whole number from 0 to {SEED_MAX}",
                    f"from 0 to {SEED_MAX}")


def tile_value(text: str) -> int:
    """A tile side in pixels: a whole number >= 16."""
    return _checked(text, int, lambda v: v >= 16, "a whole number of pixels", "at least 16 pixels")
