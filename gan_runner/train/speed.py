"""Optional speed-ups, each behind a trainer flag and each with a plain fallback.

- ``precision``: ``bf16`` autocast (no scaler needed: bf16 has fp32's range), ``fp16``
  autocast with a gradient scaler per network, ``fp32`` (default, exact and deterministic).
- ``channels_last``: NHWC memory layout for image models (faster convolutions on tensor cores).
- ``compile``: ``torch.compile`` of the main G and D forward passes (``compile_mode``
  ``reduce-overhead`` replays them as CUDA graphs). Penalties that need
  gradients of gradients (R1, GP, path length) keep the eager modules, because compiled graphs
  do not support double backward. When compilation fails (no compiler, an unsupported op) the
  run says so once and continues eagerly.
- ``tf32``: TensorFloat-32 matmuls/convolutions on Ampere+ GPUs (off by default: it changes
  numbers at the 1e-3 level).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def gradient_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Active for fp16 only; disabled scalers pass losses and steps through unchanged."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def memory_format(channels_last: bool, is_image: bool) -> torch.memory_format:
    return torch.channels_last if channels_last and is_image else torch.contiguous_format


class Compiled(nn.Module):
    """``torch.compile(module)`` that falls back to ``module`` itself on the first failure.

    Wrapping keeps the original module (and its state-dict keys) the one that is trained,
    checkpointed and averaged into the EMA; only forward calls go through the compiled graph.
    """

    def __init__(self, module: nn.Module, mode: str = "default") -> None:
        super().__init__()
        self.module = module
        chosen = {} if mode == "default" else {"mode": mode}  # torch's own default otherwise
        self._compiled: Any = torch.compile(module, **chosen)

    def forward(self, *args: Tensor) -> Tensor:
        if self._compiled is not None:
            try:
                return self._compiled(*args)
            except Exception as error:  # any compiler failure: run eagerly
                log.warning("torch.compile failed for %s (%s); continuing without it",
                            type(self.module).__name__, str(error).splitlines()[0][:200])
                self._compiled = None
        return self.module(*args)
