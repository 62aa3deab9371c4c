"""What the commands share: results on stdout, progress bars on stderr, training drivers, one-line
errors, checked output paths, and what SIGTERM and Ctrl-C do (the flags' types: :mod:`.values`)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from .values import count_value


class CommandError(Exception):
    """What a command cannot do, said in one line; ``main`` prints it and exits with ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that ``finally`` blocks write what is complete."""


#: Seconds between redraws of a progress bar on a stderr that is not a terminal (a log file, a pipe):
#: a line every half minute, not ten a second.
LOG_INTERVAL = 30.0


def print_result(line: str) -> None:
    """Print one of a command's results (a line per input, what it wrote) on stdout.

    Progress, notes, warnings and errors go to stderr, so ``nanogan segment *.tif > log.txt``
    keeps the results and the terminal still shows what went wrong. A reader that stops early
    (``| head``) does not stop the command: the rest of its results are dropped, its files
    still written.
    """
    try:
        print(line, flush=True)
    except BrokenPipeError:  # (Python's recipe: stdout to devnull, so that the exit flush fails no more)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr: live on a terminal (erased when done); into a log, first drawn after
    :data:`LOG_INTERVAL` s (work done sooner leaves only its result line), redrawn every
    :data:`LOG_INTERVAL` s, and left in its final state with a line end, so that what is
    printed next starts a line of its own."""
    from tqdm import tqdm

    live = sys.stderr.isatty()
    interval = {} if live else {"mininterval": LOG_INTERVAL, "maxinterval": LOG_INTERVAL, "delay": LOG_INTERVAL}
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=not live, dynamic_ncols=live, **interval)


def command_line() -> str:
    """How this process was started, for provenance (``nanogan train ...``)."""
    return "nanogan " + " ".join(sys.argv[1:])


def first_line(exc: BaseException) -> str:
    """An exception as one line for a user: its message's first line, or its type."""
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = f"missing {exc.args[0]!r}"
    return text.splitlines()[0] if text else type(exc).__name__


#: Errors an input can cause that say what is wrong in their message (no traceback needed).
EXPECTED = (ValueError, OSError, LookupError)


def input_error(path, exc: BaseException, args=None) -> str:
    """Print one line for an input that failed (naming it once) and return it.

    The caller goes on with the other inputs. Under ``--debug`` an unexpected error is
    raised again, with its traceback.
    """
    expected = isinstance(exc, EXPECTED)
    if getattr(args, "debug", False) and not expected:
        raise exc
    reason = first_line(exc)
    if isinstance(exc, MemoryError):
        reason = "not enough memory for this input (a smaller image, or a machine with more memory)"
    elif not expected:
        reason = f"{reason} ({type(exc).__name__}; run with --debug for details)"
    line = reason if str(path) in reason else f"{path}: {reason}"
    print(f"error: {line}", file=sys.stderr)
    return line


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM raises :class:`Terminated` in the main thread (as Ctrl-C raises KeyboardInterrupt)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def one_line_warnings():
    """Python warnings printed as ``warning: <message>``, without the file name and source line
    (on a line of their own, above a progress bar that is being drawn)."""
    import warnings

    from tqdm import tqdm

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        tqdm.write(f"warning: {message}", file=sys.stderr if file is None else file)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


# ---------------------------------------------------------------- output paths
#: The output folders this command made, each outer one before the folders made in it.
_made_folders: list[Path] = []


@contextlib.contextmanager
def unused_out_folders_removed():
    """Around a command: the output folders it made and left empty (every input failed, or none was
    found) are removed again at its end, so that a run that wrote nothing leaves nothing behind."""
    del _made_folders[:]
    try:
        yield
    finally:
        for folder in reversed(_made_folders):  # a folder made inside another first
            try:
                folder.rmdir()  # only while empty: a folder with anything in it is kept
            except OSError:
                pass
        del _made_folders[:]


def _probe_writable(folder: Path, flag: str) -> None:
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".nanogan-write-test.", dir=folder)
    except OSError as exc:
        raise CommandError(f"{flag} {folder}: cannot write there ({exc.strerror or type(exc).__name__}); "
                           f"choose another {flag}") from None
    os.close(fd)
    os.remove(probe)


def out_folder(path, flag: str = "--out") -> Path:
    """The output folder, made if missing and checked writable, before any work; else a :class:`CommandError`.

    A folder made here that is still empty when the command ends is removed again
    (:func:`unused_out_folders_removed`).
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{flag} {folder}: exists and is not a folder; give a folder")
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"{flag} {folder}: cannot make the folder ({exc.strerror or type(exc).__name__}); "
                           f"choose another {flag}") from None
    _made_folders.extend(reversed(missing))
    _probe_writable(folder, flag)
    return folder


def out_file(path, flag: str = "--out", what: str = "file", model: bool = False) -> Path:
    """An output file's path, checked before any work: not a folder, its folder writable (made if missing);
    ``model``: a file already there must be a model (a checkpoint of this package), never replaced otherwise."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise CommandError(f"{flag} {target}: is a folder; give the path of a {what}")
    if model and target.exists():
        from ..models.checkpoint import CheckpointError, load_checkpoint

        try:
            load_checkpoint(target)
        except (CheckpointError, OSError, ValueError):
            raise CommandError(f"{flag} {target}: a file that is not a napari-nanogan model is there; "
                               "give another name, or move it away") from None
    out_folder(target.parent if str(target.parent) else ".", flag)
    return target


def list_inputs(paths, *, out: Path | None = None, produced=None, zarr: bool = False) -> tuple[list[Path], int]:
    """Input files from files and folders, each once, without this command's own outputs.

    ``zarr``: zarr stores are inputs too (see :func:`~napari_nanogan.io.images.list_images`).

    ``produced(path, stems)`` says whether a file found in a folder (not named on the
    command line) that lies in ``out`` is an output of this command (``stems``: the
    inputs' stems); those are left out, so a rerun into the input folder does not process
    its earlier results. Returns (paths, how many outputs were left out).
    """
    from ..io.images import list_images

    named = {Path(p) for p in paths if not Path(p).is_dir()}
    found, seen = [], set()
    for p in list_images(paths, zarr=zarr):
        key = _resolved(p)
        if key not in seen:
            seen.add(key)
            found.append(p)
    if out is None or produced is None:
        return found, 0
    try:
        out_key = out.resolve()
    except (OSError, RuntimeError):
        return found, 0
    stems = {p.stem for p in found}
    kept = [p for p in found if p in named or p.parent.resolve() != out_key or not produced(p, stems)]
    return kept, len(found) - len(kept)


def images_only(paths: list[Path], inputs, result_suffixes: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """The files found in folders that are images, and those named as results or annotations, not images
    (ending in one of ``result_suffixes``, e.g. ``_labels.tif``; ``a_mask.png`` where ``a``'s image is an input too;
    labels TIFFs that ``nanogan segment`` wrote, whatever their names). Files named on the command line are kept."""
    from ..io.images import is_labels_tiff
    from ..io.masks import image_stem
    from ..io.omezarr import is_zarr

    named = {_resolved(Path(p)) for p in inputs if not Path(p).is_dir() or is_zarr(p)}
    stems = {p.stem for p in paths}
    suffixes = tuple(x.lower() for x in result_suffixes)
    left = [p for p in paths if _resolved(p) not in named
            and (p.name.lower().endswith(suffixes) or image_stem(p) != p.stem and image_stem(p) in stems
                 or p.suffix.lower() in (".tif", ".tiff") and is_labels_tiff(p))]
    return [p for p in paths if p not in left], left


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def subfolder_hint(inputs, result_suffixes: tuple[str, ...] = ()) -> str:
    """Where an input folder holds no image but a sub-folder does, a hint that names it (folders are not searched
    deeper; a sub-folder called ``images`` first, hidden ones never)."""
    from ..io.images import list_images

    for folder in (Path(p) for p in inputs if Path(p).is_dir()):
        subs = [q for q in sorted(folder.iterdir()) if q.is_dir() and not q.name.startswith(".")
                and images_only(list_images([q]), [q], result_suffixes)[0]]
        if subs:  # the one named for images first (the shared data's and `nanogan export`'s layout)
            sub = next((q for q in subs if q.name.lower() in ("images", "image", "img", "raw")), subs[0])
            return f" (sub-folders are not searched: give {sub} itself)"
    return ""


#: Of two inputs that would write the same output, the one of the lower rank is taken: a microscope's
#: own file (and its pixel size) before a picture exported from it, a lossless picture before a JPEG.
FORMAT_RANK = {".png": 1, ".bmp": 1, ".gif": 1, ".jpg": 2, ".jpeg": 2}


def unique_targets(paths: list[Path], target) -> tuple[list[Path], list[str]]:
    """The inputs whose output name (``target(path)``) no other input takes first, in their order, and a
    one-line reason for each other one (two inputs never write the same file). Of inputs that share an
    output, the first of the best :data:`FORMAT_RANK` is taken (``sample.tif`` before ``sample.jpg``)."""
    chosen: dict[str, Path] = {}
    for path in paths:
        name = target(path)
        if name not in chosen or _rank(path) < _rank(chosen[name]):
            chosen[name] = path
    kept, refused = [], []
    for path in paths:
        name = target(path)
        if chosen[name] is path:
            kept.append(path)
        else:
            refused.append(f"{path}: would write the same {name} as {chosen[name]}, which is taken instead; run it "
                           "with another --out (or rename it)")
    return kept, refused


def _rank(path: Path) -> int:
    return FORMAT_RANK.get(Path(path).suffix.lower(), 0)


def load_model(loader, name, flag: str = "--model"):
    """``loader(name)``, or a :class:`CommandError` saying in one line why the model cannot be used."""
    try:
        return loader(name)
    except (LookupError, ValueError, OSError, RuntimeError) as exc:
        text = first_line(exc)
        raise CommandError(text if str(name) in text else f"{flag} {name}: {text}") from None


def drive_training(make_loop, total: int, desc: str, report, *, quiet: bool = False) -> int:
    """Run a training loop (a generator of TrainProgress) with a progress bar on stderr.

    ``make_loop(should_stop)`` builds the loop; SIGTERM, and a first Ctrl-C (SIGINT), ask it to
    stop after the current step (it writes last.pt; exit status 143, or 130 after a Ctrl-C, as for
    any unfinished command: the same command resumes); a second Ctrl-C aborts at once.
    ``report(record)`` prints what a step has to say. ``quiet``: no bar and no reports (the other
    processes of a data-parallel run).
    """
    import signal
    import threading

    stop = {"now": False, "ctrl_c": False, "sigterm": False, "stopped": False}  # (stopped: before the end)

    def interrupt(*_):  # (said by the loop, not here: a handler that prints can interrupt the bar's print)
        if stop["ctrl_c"]:
            raise KeyboardInterrupt
        stop.update(now=True, ctrl_c=True)

    main = threading.current_thread() is threading.main_thread()  # (only the main thread may set a handler)
    previous = {}
    if main:
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True, sigterm=True))}
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # (a background job's, ignored: left so)
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    try:
        code = _drive(make_loop, total, desc, report, stop, quiet)
        if code == 0 and stop["stopped"] and (stop["ctrl_c"] or stop["sigterm"]):  # (not a signal after the end)
            return 130 if stop["ctrl_c"] else 143
        return code
    finally:
        for number, handler in previous.items():  # the caller's handlers back (None: one set outside Python)
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def _drive(make_loop, total: int, desc: str, report, stop: dict, quiet: bool) -> int:
    if quiet:
        try:
            for rec in make_loop(lambda: stop["now"]):
                stop["stopped"] = stop["stopped"] or rec.stopped
        except KeyboardInterrupt:
            return 130
        return 0
    bar = progress_bar(total, desc)
    said = False
    try:
        for rec in make_loop(lambda: stop["now"]):
            if stop["ctrl_c"] and not said:
                said = True
                bar.write("stopping after this step, writing last.pt (Ctrl-C again to abort)", file=sys.stderr)
            # (the postfix waits for the bar's own redraw: into a log, once per LOG_INTERVAL, not per step)
            if "total" in rec.losses:  # the stop record trains nothing: keep the last step's loss shown
                bar.set_postfix({"loss": f"{rec.losses['total']:.3f}", "s/step": f"{rec.seconds_per_step:.2f}"},
                                refresh=False)
            elif rec.losses:  # train-gan --critic-warmup: only the critics learn, their loss is what moves
                bar.set_postfix({"critics": f"{sum(rec.losses.values()) / len(rec.losses):.3f}",
                                 "s/step": f"{rec.seconds_per_step:.2f}"}, refresh=False)
            bar.n = rec.step  # (a resumed run starts past 0)
            bar.update(0)  # redraws when the bar's interval has passed
            report(rec)
            if rec.stopped:
                stop["stopped"] = True
                print(f"\nstopped at step {rec.step}; checkpoint {rec.checkpoint}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted; the same command resumes from the last checkpoint written (last.pt), if any",
              file=sys.stderr)
        return 130
    finally:
        bar.close()
    return 0


def has_extra(command: str) -> bool:
    from ..distributed import ExtraMissing, require

    try:
        require("--scheduler and --workers")
    except ExtraMissing as exc:
        print(f"nanogan {command}: {exc}", file=sys.stderr)
        return False
    return True


def add_cluster_options(p, *, overwrite: bool = True, threads: bool = True) -> None:
    """``--scheduler`` / ``--workers`` (and ``--overwrite``) of the commands that run on a Dask cluster."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on a running dask.distributed scheduler (tcp://host:port); inputs and --out must be "
                            "on a file system its workers see. Needs the distributed extra")
    where.add_argument("--workers", type=count_value, default=None, metavar="N",
                       help="run on a local Dask cluster of N worker processes (the cores shared out among them)")
    if threads:
        p.add_argument("--threads", type=count_value, default=None, metavar="N",
                       help="torch threads of this process, or of each worker (default: all cores here; on a local "
                            "cluster the cores shared out; a `dask worker` its own, 1 per worker thread). Results are "
                            "byte-identical between runs with the same number: float sums follow the thread count")
    if overwrite:
        p.add_argument("--overwrite", action="store_true",
                       help="with --scheduler/--workers: redo outputs that are already complete (default: a rerun "
                            "skips them and finishes the rest)")


def apply_threads(args) -> None:
    """``--threads`` for a run in this process."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(int(args.threads))


def one_process_only(command: str) -> bool:
    """False (after one line from process 0) when torchrun started this command in several processes."""
    from ..training.ddp import world_from_env

    world = world_from_env()
    if not world.distributed:
        return True
    if world.main:
        print(f"nanogan {command}: trains in one process; run it without torchrun (or --nproc_per_node 1). "
              "Data-parallel training: nanogan train", file=sys.stderr)
    return False


def annotated_samples(args, command: str):
    """The annotated images a generator or texture learns from, with their source for the provenance: the
    ``--images``/``--masks`` folders, or else the ``--dataset`` training split under ``--data-root``. None
    (the reason printed) when there are none."""
    from ..config import GENERATOR_DATASETS

    if args.images and args.masks:
        from ..data.datasets import load_samples
        from ..io.pairs import pair_folders

        triples = pair_folders(args.images, args.masks)
        if not triples:
            print(f"nanogan {command}: no image/mask pairs found (mask stems must equal or start with the image stem)",
                  file=sys.stderr)
            return None
        return (load_samples(triples, domain="paired"),
                {"images": args.images, "masks": args.masks, "pairs": [t[0] for t in triples]})
    from ..training.data import generator_samples

    _, folder, description = GENERATOR_DATASETS[args.dataset]
    samples = generator_samples(args.data_root, args.dataset)
    if samples is None:
        print(f"nanogan {command}: give --images and --masks, or a --data-root with {folder}/", file=sys.stderr)
        return None
    return samples, {f"{args.dataset}_train": [s.name for s in samples], "selection": description}
