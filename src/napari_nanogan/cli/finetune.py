"""``nanogan finetune``: the model the user segments with, adapted to the user's annotated images."""

from __future__ import annotations

import sys

from ..config import PRESETS
from ..models.registry import DEFAULT_GENERATOR, DEFAULT_SEGMENTER
from .common import (CommandError, command_line, first_line, load_model, one_process_only, out_file, print_result,
                     progress_bar)
from .values import count_value, whole_value


def cmd_finetune(args) -> int:
    """Fine-tune on the user's annotated pairs; writes a bundle usable as --model, and says whether it is better."""
    import signal
    import threading

    from ..config import ModelKind
    from ..data.datasets import load_sample
    from ..models.registry import resolve_model
    from ..training.finetune import check_pairs, finetune, verdict_text

    if not one_process_only("finetune"):
        return 2
    if len(args.images) != len(args.masks):
        print(f"nanogan finetune: {len(args.images)} image(s) but {len(args.masks)} mask(s); give them in matching order",
              file=sys.stderr)
        return 2
    out = out_file(args.out, what="model file (e.g. my-model.pt)", model=True)  # before any training, not after
    if args.base_segmenter not in ("auto",):
        load_model(lambda name: resolve_model(name, kind=ModelKind.SEGMENTER), args.base_segmenter, "--base-segmenter")
    if args.base_generator != DEFAULT_GENERATOR:  # named on purpose: a wrong name is an error, not "without one"
        load_model(lambda name: resolve_model(name, kind=ModelKind.GENERATOR), args.base_generator, "--base-generator")
    try:
        pairs = []
        for image, mask in zip(args.images, args.masks):
            pairs.append(load_sample(image, mask, domain="user"))
            try:
                check_pairs(pairs[-1:])
            except ValueError as exc:  # named by the files given, not by the stem the library knows
                reason = first_line(exc).removeprefix(f"{pairs[-1].name}: ")
                raise ValueError(f"{image} (mask {mask}): {reason}") from None
    except (ValueError, OSError) as exc:
        print(f"nanogan finetune: {first_line(exc)}", file=sys.stderr)
        return 2
    stop = {"now": False, "said": False, "code": 0}  # code: the exit status of a run stopped by a signal

    def interrupt(*_):  # Ctrl-C: stop as SIGTERM does, keeping what was trained; a second one aborts
        if stop["now"]:
            raise KeyboardInterrupt
        stop.update(now=True, code=130)  # (said by the loop: a handler that prints can interrupt the bar's print)

    main_thread = threading.current_thread() is threading.main_thread()  # (signals are the main thread's)
    recipe = PRESETS[args.preset]
    steps = recipe.segmenter_steps if args.steps is None else args.steps
    gan_steps = recipe.gan_steps if args.gan_steps is None else args.gan_steps
    plan = recipe.description if (steps, gan_steps) == (recipe.segmenter_steps, recipe.gan_steps) else (
        f"{steps} segmenter steps" + (f", then {gan_steps} cycle-GAN steps" if gan_steps else "")
        + (", then the cycle GAN until stopped" if gan_steps is None else ""))
    print(f"fine-tuning {args.base_segmenter} on {len(pairs)} images, preset {args.preset}: {plan}", file=sys.stderr)
    loop = finetune(pairs, out_path=out, preset=args.preset, base_segmenter=args.base_segmenter,
                    base_generator=args.base_generator, should_stop=lambda: stop["now"],
                    provenance={"command": command_line()}, steps=args.steps,
                    gan_steps=-1 if args.gan_steps is None else args.gan_steps)
    bar = progress_bar(steps + (gan_steps or 0), "finetune")
    stage, handlers = None, {}
    try:
        if main_thread:
            handlers = {signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True, code=143)),
                        signal.SIGINT: signal.signal(signal.SIGINT, interrupt)}
        while True:
            try:
                rec = next(loop)
            except StopIteration as done:
                result = done.value
                break
            except (ValueError, LookupError, OSError) as exc:  # the library's checks: one line, no traceback
                raise CommandError(first_line(exc)) from None
            if stop["now"] and not stop["said"]:
                stop["said"] = True
                bar.write("stopping: the model trained so far is checked and written after this step "
                          "(Ctrl-C again to abort, writing nothing)", file=sys.stderr)
            if rec.stage != stage:
                stage = rec.stage
                bar.set_description(f"finetune: {stage}", refresh=False)
            if rec.seconds_per_step:  # (drawn with the bar: into a log, once per LOG_INTERVAL, not per step)
                bar.set_postfix({"s/step": f"{rec.seconds_per_step:.2f}"}, refresh=False)
            bar.n = rec.step  # (a stage may number its steps anew)
            bar.update(0)  # redraws when the bar's interval has passed
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written", file=sys.stderr)
        return 130
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)
        bar.close()
        loop.close()  # its temporary run folder goes with it
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if result.stopped:
        print(f"stopped as asked after {result.steps} training steps: the model trained so far is judged and "
              "written below", file=sys.stderr)
    fmt = lambda s: f"IoU {s['iou']:.3f}, F1 {s['f1']:.3f}"  # noqa: E731
    print_result(f"held-out rows, segmented as `nanogan segment` does: before ({args.base_segmenter}) "
                 f"{fmt(result.before)}; after {fmt(result.after)} ({result.steps} steps, {result.seconds:.0f} s)")
    if result.size_calibration is not None:
        sizes = result.size_calibration
        print_result(f"particle diameter estimates x {sizes['correction']:.2f}, calibrated on your annotations "
                     f"(estimated {', '.join(f'{v:.0f}' for v in sizes['estimated_px'])} px; annotated "
                     f"{', '.join(f'{v:.0f}' for v in sizes['annotated_px'])} px)")
    print_result(f"wrote {result.path}: " + verdict_text(result, args.base_segmenter, f"use it with --model {result.path}",
                                                          longer="try a longer --preset"))
    return stop["code"] if result.stopped else 0  # (stopped before the end, as any unfinished command: 130 or 143)


def add_commands(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune the model you segment with on your annotated images",
        description="Fine-tune the segmenter (and, with --preset standard or thorough, the cycle-GAN generator) on "
                    "your annotated images: the bottom rows of each image are held out, segmented before and after as `nanogan "
                    "segment` does, and the result says whether the fine-tuned model is better there. Writes one "
                    "model file usable as --model everywhere. Ctrl-C or SIGTERM stops early and still writes the "
                    "model trained so far (a second Ctrl-C aborts, writing nothing).")
    p.add_argument("--images", nargs="+", required=True, metavar="IMG", help="your images")
    p.add_argument("--masks", nargs="+", required=True, metavar="MASK", help="their masks, in the same order as --images")
    p.add_argument("--out", required=True, metavar="MODEL_PATH", help="the fine-tuned model (usable as --model)")
    p.add_argument("--preset", default="quick", choices=list(PRESETS),
                   help="; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()))
    p.add_argument("--steps", type=count_value, default=None, metavar="N",
                   help="segmenter steps instead of the preset's (e.g. 50 for a first try)")
    p.add_argument("--gan-steps", type=whole_value, default=None, metavar="N",
                   help="cycle-GAN steps after them instead of the preset's (0: none)")
    p.add_argument("--base-segmenter", default=DEFAULT_SEGMENTER,
                   help=f"the segmenter to start from (name or path; default {DEFAULT_SEGMENTER}: the network it picks "
                        "for your images)")
    p.add_argument("--base-generator", default=DEFAULT_GENERATOR,
                   help="the generator to start from, for the presets that train it too (name or path)")
    p.set_defaults(func=cmd_finetune)
