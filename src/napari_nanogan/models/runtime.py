"""Where and how networks run: the device, CPU memory format, bf16 support."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """A CUDA GPU when there is one, else the CPU (every path runs on the CPU)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def for_inference(network: torch.nn.Module, device: torch.device | str | None = None) -> torch.nn.Module:
    """``network`` on ``device`` (default: :func:`default_device`) in eval mode.

    On the CPU in channels-last memory format: oneDNN's convolutions run faster so
    (a 16-channel Attention U-Net on 1024 x 768: 1.20 -> 0.56 s).
    """
    device = torch.device(device) if device is not None else default_device()
    network = network.to(device).eval()
    if device.type == "cpu":
        network = network.to(memory_format=torch.channels_last)
    return network


def working_format(device: torch.device) -> torch.memory_format:
    """The memory format inputs should have on ``device`` (channels-last on the CPU)."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def bf16_supported() -> bool:
    """Whether this CPU runs bf16 matrix kernels natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


#: Environment variable that fixes the CPU precision of inference and of training runs left at ``auto``:
#: ``fp32`` or ``bf16`` (default: bf16 where fast).
PRECISION_ENV = "NANOGAN_PRECISION"


def inference_precision(device: torch.device | str) -> str:
    """``"bf16"`` (autocast) on CPUs with native bf16 kernels, else ``"fp32"``; ``$NANOGAN_PRECISION`` decides if set.

    On an AVX512-BF16 CPU a 16-channel Attention U-Net on 1024 x 768 takes 0.26 s in bf16
    against 0.70 s in fp32; the labels it gives agree closely (``python -m bench.bench_segment``
    reports the agreement). GPUs run fp32.
    """
    import os

    chosen = os.environ.get(PRECISION_ENV, "").strip().lower()
    if chosen in ("fp32", "bf16"):
        return chosen
    if chosen:
        raise ValueError(f"${PRECISION_ENV} must be fp32 or bf16, not {chosen!r}")
    return "bf16" if torch.device(device).type == "cpu" and bf16_supported() else "fp32"


def training_precision(device: torch.device | str, chosen: str = "auto") -> str:
    """The arithmetic a training run uses: ``chosen`` unless ``"auto"``.

    ``"auto"``: on the CPU :func:`inference_precision`'s choice (bf16 where it runs natively,
    ``$NANOGAN_PRECISION`` deciding if set); on a GPU fp32. bf16 autocast trains the
    16-channel Attention U-Net on 4 x 256 px patches at 0.456 s a step against 0.592 s in
    fp32 on 2 AVX512-BF16 cores (``python -m bench.train_speed``); weights, optimiser state
    and the loss stay fp32.
    """
    if chosen != "auto":
        return chosen
    return inference_precision(device) if torch.device(device).type == "cpu" else "fp32"


def inference_copy(network: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The network to sample with: itself in fp32, or a bf16 copy (weights cast once, activations bf16).

    Autocast casts every convolution's input and output between fp32 and bf16, which on the
    generators (many element-wise steps between convolutions) cost as much as bf16 saved; a
    network held in bf16 runs all of it in bf16. The copy leaves the original's fp32 weights
    for saving and training.
    """
    if precision != "bf16":
        return network
    import copy

    twin = copy.deepcopy(network).to(torch.bfloat16)
    return twin.to(memory_format=torch.channels_last) if next(network.parameters()).device.type == "cpu" else twin

