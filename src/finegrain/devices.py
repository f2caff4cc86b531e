"""Which device a command computes on (``--device auto|cpu|cuda|mps``), and its mixed-precision settings.

Model files are always written from and read into CPU tensors (``artifact.py``), so a model trained on a GPU
loads on any machine; only the computation moves.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from finegrain.errors import FinegrainError

DEVICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(FinegrainError):
    """A device that this machine or this PyTorch build does not have."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def check_device_name(name: str, flag: str = "--device") -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; anything else is a named error."""
    base = str(name).split(":", 1)[0]
    index = str(name).split(":", 1)[1] if ":" in str(name) else None
    if base not in DEVICES or (index is not None and (base != "cuda" or not index.isdigit())):
        raise DeviceError(f"{flag} must be one of {', '.join(DEVICES)} (or cuda:N), not {name!r}")
    return str(name)


def resolve_device(name: str = "auto", flag: str = "--device") -> torch.device:
    """The device ``name`` stands for on this machine: ``auto`` is CUDA when a GPU is present, else the CPU.

    Asking for a GPU this machine lacks is an error naming the flag, never a silent CPU run.
    """
    name = check_device_name(name, flag)
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        # With its index: torch.cuda.set_device refuses a bare "cuda" (seen on an H200: every --device auto run
        # failed before its first step).
        name = f"cuda:{torch.cuda.current_device()}"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this PyTorch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise DeviceError(f"{flag} {name}: {why} (torch {torch.__version__}); use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"{flag} {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        exact_float32_convolutions()
        return torch.device("cuda", index)
    if name == "mps" and not _mps_available():
        raise DeviceError(f"{flag} mps: Apple's Metal backend is not available here; use --device cpu or auto")
    return torch.device(name)


def exact_float32_convolutions() -> None:
    """Float32 convolutions in full float32 on CUDA, not cuDNN's default TF32 (10-bit mantissas).

    A model's vectors and scores on a GPU then match the CPU's to about 1e-7 rather than 4e-4 (measured on an
    H200), so a gallery built on one machine is searched on another with the same result. Training loses nothing:
    it runs under autocast (bf16 or fp16), where TF32 does not apply. A process-wide torch setting, set by every
    path that puts a model on a GPU, since each goes through ``resolve_device``.
    """
    torch.backends.cudnn.allow_tf32 = False


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The mixed-precision type training runs under (None: float32). ``auto``: on CUDA, bf16 where the GPU has it
    (no loss scaling needed), else fp16; on a CPU, bf16 only where the CPU computes it natively (AVX512-BF16 or
    AMX): there the default conv4s train 1.6-1.9x faster at 64 px (bench/README); on AVX2-only CPUs reduced
    precision ran slower than float32, so they keep float32."""
    if precision == "float32":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic units (torch's own dispatch checks, private but pinned with torch)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def precision_name(dtype: torch.dtype | None) -> str:
    """What ``autocast_dtype`` chose, as a run records it: "bfloat16", "float16" or "float32"."""
    return str(dtype or torch.float32).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 only: bf16 has float32's range, so its gradients do not underflow."""
    return torch.amp.GradScaler(device.type) if dtype == torch.float16 else None


def model_device(model: nn.Module) -> torch.device:
    """Where a model's weights are (the CPU for a model without any)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of a batch (nested in tuples, lists, dicts) moved to ``device``; other values as they are."""
    if device.type == "cpu":
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def configure(device: torch.device) -> None:
    """Per-process settings for ``device``: deterministic cuDNN kernels, so a seed gives the same run."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
