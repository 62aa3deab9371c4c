"""The ``nanogan`` command line: segment, measure, synthesize, export, train, tune, demo.

Every command drives the same library functions the napari panels use. Progress goes
to stderr; results go to files; a failing input gets a one-line reason and a non-zero
exit while the other inputs are still processed. No traceback reaches the user unless
``--debug`` asks for it: what a command cannot do is one line and exit code 2, an
unexpected error one line and exit code 1, Ctrl-C 130 and SIGTERM 143 (the complete
outputs are kept; the same command run again finishes the job). Nothing in the package
imports this.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from . import finetune, segment, synthesize, texture, train, tune
from .common import (CommandError, Terminated, first_line, one_line_warnings, sigterm_interrupts,
                     unused_out_folders_removed)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="nanogan", description="Nanoparticle segmentation and synthesis for EM images.")
    parser.add_argument("--version", action="version", version=f"napari-nanogan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (INFO level)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True)
    for family in (segment, synthesize, train, texture, finetune, tune):
        family.add_commands(sub)
    return parser


def _user_errors() -> tuple:
    """Errors whose message says what to do: one line, no "--debug" hint."""
    from ..io.images import ImageReadError
    from ..models.checkpoint import CheckpointError
    from ..models.registry import ModelNotFoundError

    return (ImageReadError, CheckpointError, ModelNotFoundError, FileExistsError, PermissionError, NotADirectoryError,
            IsADirectoryError, FileNotFoundError)


def _check_environment() -> None:
    """Refuse a bad setting once, before any input, rather than once per file."""
    from ..io.limits import max_pixels

    max_pixels()


#: Words that, left over on a command line, are the unit of a length typed with a space before it.
LENGTH_UNITS = ("nm", "um", "µm", "μm", "mm", "pm", "å", "a", "angstrom")


def main(argv=None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's own usage, not the top level's, for what follows the command
        words = list(sys.argv[1:] if argv is None else argv)
        before = words[: words.index(args.command)] if args.command in words else []
        if any(u in before for u in unknown):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
        hint = ""
        for unit in (u for u in unknown if u.lower() in LENGTH_UNITS and u in words[2:]):
            flag, value = words[words.index(unit) - 2], words[words.index(unit) - 1]
            if flag == "--scale-bar":
                hint = f" (a length and its unit are one word: {value}{unit}, or '{value} {unit}' in quotes)"
            elif flag.startswith("--"):
                hint = f" ({flag} takes a plain number: see its unit in --help)"
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:  # its notes on odd files come on top of our one line per input
        logging.getLogger("tifffile").setLevel(logging.ERROR)
    name = f"nanogan {args.command}"
    try:
        _check_environment()
        with (sigterm_interrupts(), unused_out_folders_removed(),
              contextlib.nullcontext() if args.debug else one_line_warnings()):
            return args.func(args)
    except CommandError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt as exc:
        what = "stopped (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"\n{name}: {what}; complete outputs are kept: run the same command again to finish", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:
        if args.debug:
            raise
        if isinstance(exc, _user_errors()):
            print(f"{name}: {first_line(exc)}", file=sys.stderr)
            return 2
        reason = "not enough memory" if isinstance(exc, MemoryError) else first_line(exc)
        print(f"{name}: unexpected error: {reason} ({type(exc).__name__}); run with --debug for details",
              file=sys.stderr)
        return 1
