"""StyleGAN2's building blocks in plain PyTorch ops (Karras et al. 2020, "Analyzing and improving
the image quality of StyleGAN"), so they run on the CPU and on any CUDA GPU without custom kernels.

Equalized learning rate: weights are stored N(0, 1) / lr_mult and multiplied by
lr_mult / sqrt(fan_in) in every forward pass. Adam's step is about the same for every stored
weight, so the runtime factor makes each layer learn at a speed set by its fan-in and by
``lr_mult`` (0.01 slows the mapping network down), not by its initialization.

Modulated convolution applies the style by scaling the input channels, convolving with the
shared weight and rescaling each output channel by the demodulation factor. This equals
convolving every sample with its own demodulated weight, but needs no per-sample weights and
runs as one ordinary batched convolution. Measured on the CPU (forward + backward, one thread),
it was within 25% of a grouped convolution at 16-32 channels and 1.5-2x faster than both the
grouped convolution and a batched einsum over unfolded patches at 64-128 channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps unit variance through leaky ReLU, as in the reference
DEMOD_EPS = 1e-8


FP16_CONV_CLAMP = 256.0  # the reference's conv_clamp whenever it trains in fp16


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def _fp16_compute(x: Tensor) -> bool:
    """Whether ``x``'s layer runs in float16: under fp16 autocast (``trainer.precision=fp16``)
    or on half tensors. Decided in the forward pass because a model does not see the trainer's
    config, and the same model trains in fp32 and then samples under fp16, or the reverse."""
    device = x.device.type
    return x.dtype == torch.float16 or (torch.is_autocast_enabled(device)
                                        and torch.get_autocast_dtype(device) == torch.float16)


class ConvClamp(nn.Module):
    """StyleGAN2-ADA's ``conv_clamp``: in float16 the activations of every convolution layer are
    clamped to [-limit, limit], so that a large activation cannot grow into an overflow (inf)
    through the following layers; the reference clamps at 256 whenever it trains in fp16, in
    G's convolutions and RGB layers and in D's convolutions. In float32 and bfloat16 (fp32's
    range) it does nothing, so their numbers are those of an unclamped network. ``limit`` None
    turns it off; ``set_conv_clamp`` sets it for a whole network."""

    def __init__(self, limit: float | None = FP16_CONV_CLAMP) -> None:
        super().__init__()
        self.limit = limit

    def forward(self, x: Tensor) -> Tensor:
        if self.limit is None or not _fp16_compute(x):
            return x
        return x.clamp(-self.limit, self.limit)

    def extra_repr(self) -> str:
        return f"limit={self.limit} (in float16)"


def set_conv_clamp(network: nn.Module, limit: float | None) -> None:
    """Give every ``ConvClamp`` of ``network`` the bound ``limit`` (None: no clamp)."""
    for module in network.modules():
        if isinstance(module, ConvClamp):
            module.limit = limit


def _lowpass_kernel() -> Tensor:
    """The separable [1, 3, 3, 1] filter, normalized to sum 1 (a cheap anti-aliasing filter)."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = taps[:, None] * taps[None, :]
    return kernel / kernel.sum()


class Blur(nn.Module):
    """Depthwise low-pass filter; ``gain`` 4 restores the mean after 2x zero-insertion upsampling,
    ``stride`` 2 subsamples after filtering."""

    def __init__(self, pad: int, gain: float = 1.0, stride: int = 1) -> None:
        super().__init__()
        self.pad, self.stride = pad, stride
        self.register_buffer("kernel", _lowpass_kernel() * gain, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(channels, 1, *self.kernel.shape)
        return F.conv2d(x, weight, stride=self.stride, padding=self.pad, groups=channels)


class Upsample2x(nn.Module):
    """Zero insertion and low-pass filtering in one depthwise transposed convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", _lowpass_kernel() * 4.0, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(channels, 1, *self.kernel.shape)
        return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=channels)


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate; the bias learns at ``lr_mult`` too and
    starts at ``bias_init`` (1 for style maps, so styles start around identity scaling)."""

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0,
                 lr_mult: float = 1.0, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mult))
        self.weight_gain = lr_mult / math.sqrt(in_features)
        self.lr_mult = lr_mult
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mult)
        return lrelu(x) if self.activate else x


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate; ``down`` blurs then convolves with stride 2,
    which halves the side without aliasing (the discriminator's downsampling)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 bias: bool = True, activate: bool = True, down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        # blur padding (k + 2) // 2 makes the stride-2 convolution output exactly half the side
        self.blur = Blur(pad=(kernel_size + 2) // 2) if down else None
        self.stride, self.padding = (2, 0) if down else (1, kernel_size // 2)
        # activated and clamped, as the reference's layers; D's 1x1 shortcuts are neither
        self.clamp = ConvClamp() if activate else None

    def forward(self, x: Tensor) -> Tensor:
        if self.blur is not None:
            x = self.blur(x)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, stride=self.stride,
                     padding=self.padding)
        return self.clamp(lrelu(x)) if self.clamp is not None else x


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled per sample by a style computed from ``w``.

    With ``demodulate`` each output channel is rescaled to unit expected variance (what AdaIN's
    normalization did, without the droplet artifacts of normalizing actual statistics). ``up``
    doubles the side with a stride-2 transposed convolution followed by the low-pass filter.
    The result has no bias: noise is added before it (see ``synthesis``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *,
                 demodulate: bool = True, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate = demodulate
        self.padding = kernel_size // 2
        # transposed conv gives 2H + k - 2 pixels; the blur's padding brings them to 2H
        self.up_blur = Blur(pad=(5 - kernel_size) // 2, gain=4.0) if up else None

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w)  # (N, in)
        weight = self.weight * self.weight_gain
        x = x * styles[:, :, None, None]
        if self.up_blur is None:
            x = F.conv2d(x, weight, padding=self.padding)
        else:
            x = self.up_blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        if self.demodulate:
            # ||w_out * s||^2 per sample and output channel: (N, in) @ (in, out)
            energy = styles.square() @ weight.square().sum(dim=(2, 3)).T
            x = x * (energy + DEMOD_EPS).rsqrt()[:, :, None, None]
        return x


NOISE_MODES = ("random", "const", "none")


class NoiseInjection(nn.Module):
    """Per-pixel Gaussian noise times a learned strength (initially 0): stochastic detail.

    ``noise_mode`` "const" uses one fixed noise image drawn at construction (reproducible
    samples), "none" leaves it out.
    """

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("const_noise", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: Tensor, noise_mode: str) -> Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        elif noise_mode == "const":
            noise = self.const_noise.to(x.dtype)
        else:
            raise ValueError(f"noise_mode {noise_mode!r} is not one of {NOISE_MODES}")
        return x + noise * self.strength
