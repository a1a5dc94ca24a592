"""Moving values between the host and the device without making the host wait for the device.

A training step only queues work: the GPU runs it while the host goes on issuing the next
kernels, so that CUDA streams can overlap. Two innocent-looking calls end that: a blocking copy
from ordinary (pageable) host memory to the GPU, which PyTorch follows with a stream
synchronization, and reading a device value on the host (``.item()``, ``bool(tensor)``,
``float(tensor)``), which waits for everything queued before it. ``to_device`` copies from
pinned memory instead, queued like a kernel; ``HostCopy`` brings a value back the same way and
is read later, when the work that made it has long finished.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_runner.core.errors import UserError


def to_device(tensor: Tensor, device: torch.device,
              memory_format: torch.memory_format = torch.preserve_format) -> Tensor:
    """``tensor.to(device)`` that does not wait: on CUDA through pinned memory (PyTorch's
    caching host allocator keeps the pinned block until the copy has run)."""
    if device.type != "cuda" or tensor.is_cuda:
        return tensor.to(device, memory_format=memory_format)
    pinned = tensor if tensor.is_pinned() else tensor.pin_memory()
    return pinned.to(device, non_blocking=True, memory_format=memory_format)


class HostCopy:
    """A device tensor's value on its way to the host.

    The copy is queued behind the work that computes the value and an event marks its arrival;
    ``value()`` waits for that event only, not for the work queued since. Read an interval of
    steps after it was made, it waits for nothing. On the CPU it is a plain copy.
    """

    def __init__(self, tensor: Tensor) -> None:
        self._event: torch.cuda.Event | None = None
        if tensor.is_cuda:
            self._host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self._host.copy_(tensor.detach(), non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = tensor.detach().clone()

    def value(self) -> float:
        """The scalar, as a Python float (read from host memory, not through the device)."""
        if self._event is not None:
            self._event.synchronize()
        return float(self._host.numpy())


def select_device(name: str) -> torch.device:
    """``trainer.device`` / ``device=``: auto picks CUDA when a GPU is visible."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("trainer.device=cuda but no CUDA GPU is visible",
                        "use trainer.device=auto or trainer.device=cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
