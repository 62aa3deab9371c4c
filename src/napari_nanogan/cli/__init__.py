"""The ``nanogan`` command line: segment, measure, synthesize, export, train, tune, demo.

Every command drives the same library functions the napari panels use. Progress goes
to stderr; results go to files; a failing input gets a one-line reason and a non-zero
exit while the other inputs are still processed. Nothing in the package imports this.
"""

from __future__ import annotations

import argparse
import logging

from . import segment, synthesize, train, tune


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="nanogan", description="Nanoparticle segmentation and synthesis for EM images.")
    parser.add_argument("--version", action="version", version=f"napari-nanogan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True)
    for family in (segment, synthesize, train, tune):
        family.add_commands(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return args.func(args)
