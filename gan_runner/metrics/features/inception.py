"""The Inception-v3 of TF's FID code, which every published FID / KID / IS number was made with.

It differs from torchvision's Inception-v3 in ways that change the numbers: TF's average pools
ignore the zero padding (``count_include_pad=False``), the last mixed block max-pools its pool
branch, there are 1008 classes, and BatchNorm uses eps=1e-3. Module names follow pytorch-fid's
port, so its public weights file (``pt_inception-2015-12-05-6726825d.pth``) loads unchanged.

The input side matters as much as the network. Each resize mode reproduces one reference tool
exactly, both the resize to 299x299 and the scaling to the network's range:

``tf_bilinear``
    TF 1.x ``resize_bilinear`` (no half-pixel centres, so the image shifts by up to half a
    source pixel and is never antialiased), then ``(x - 128) / 128``: what the original TF FID
    and IS code did inside its graph, reproduced by torch-fidelity and clean-fid's
    ``legacy_tensorflow`` mode. The default: it is comparable with most published numbers.
``clean``
    clean-fid's ``clean`` mode: PIL bicubic on each channel as float (antialiased, correctly
    centred, no rounding to uint8 in between), clipped to [0, 255], then ``(x - 128) / 128``.
    Its FIDs differ from ``tf_bilinear`` ones and only compare with clean-fid's tables.
``torch_bilinear``
    pytorch-fid's default: ``x / 255``, torch bilinear with half-pixel centres (no
    antialias), then ``2x - 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from gan_runner.core.errors import UserError
from gan_runner.metrics.features.base import (
    FEATURES,
    ExtractorOptions,
    FeatureExtractor,
    check_images,
)
from gan_runner.metrics.features.weights import HINT, load_state_dict, locate_inception_weights

INPUT_SIZE = 299


def _tf1_taps(in_size: int, out_size: int, device: torch.device
              ) -> tuple[Tensor, Tensor, Tensor]:
    """Output pixel i of TF 1.x resize_bilinear reads source position i * in/out (computed in
    float32, as TF does) between pixels floor(pos) and the next one clamped to the edge."""
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    pos = torch.arange(out_size, dtype=torch.float32, device=device) * scale.to(device)
    lo = pos.long()
    return lo, (lo + 1).clamp_max(in_size - 1), pos - lo.float()


def resize_tf1_bilinear(x: Tensor, size: int) -> Tensor:
    """TF 1.x bilinear resize (align_corners=False, half_pixel_centers=False) of float
    (N, C, H, W), separably: along width, then height, with TF's operation order so the result
    is bit-identical to TF's and torch-fidelity's."""
    lo, hi, frac = _tf1_taps(x.shape[3], size, x.device)
    x = x[..., lo] + (x[..., hi] - x[..., lo]) * frac
    lo, hi, frac = _tf1_taps(x.shape[2], size, x.device)
    return x[..., lo, :] + (x[..., hi, :] - x[..., lo, :]) * frac[:, None]


def tf1_bilinear_matrix(in_size: int, out_size: int, device: torch.device) -> Tensor:
    """TF 1.x resize_bilinear along one axis as an (out_size, in_size) matrix: two taps per
    row, at the same positions and weights as ``resize_tf1_bilinear``."""
    lo, hi, frac = _tf1_taps(in_size, out_size, device)
    rows = torch.arange(out_size, device=device)
    matrix = torch.zeros(out_size, in_size, device=device)
    matrix.index_put_((rows, lo), 1 - frac, accumulate=True)  # lo == hi at the edge: sums
    matrix.index_put_((rows, hi), frac, accumulate=True)
    return matrix


def resize_tf1_bilinear_fused(images: Tensor, size: int, scale: Tensor | float,
                              shift: Tensor | float) -> Tensor:
    """The fast path's TF 1.x bilinear resize of uint8 (N, C, H, W), then ``x * scale +
    shift`` (per channel when they are (1, 3, 1, 1): a gray image comes out RGB). Two matrix
    products and one multiply-add replace four gathers, two lerps and the normalization's
    passes: on the CPU (2 threads, 50 images to 299 px) 2.7x-3.4x faster from 64 px
    (``scripts/bench_metrics.py``), 2x from 256.
    The products round differently from the lerps: 2.4e-7 apart in the [-1, 1] range.

    The products grow with the input side while the gathers do not: even at 512 px and
    1.4x slower at 1024 px. So the fast path keeps the gathers above ``size``: ``fused_fits``."""
    x = images.float()
    rows = tf1_bilinear_matrix(x.shape[2], size, x.device)
    cols = tf1_bilinear_matrix(x.shape[3], size, x.device)
    resized = rows @ (x @ cols.T)
    return torch.addcmul(torch.as_tensor(shift, device=x.device), resized,
                         torch.as_tensor(scale, device=x.device))


def fused_fits(images: Tensor, size: int) -> bool:
    """Whether the fused resize is the faster one: upsampling or equal sizes (every GAN
    resolution up to ``size``)."""
    return max(images.shape[2], images.shape[3]) <= size


def resize_pil_bicubic(images: Tensor, size: int) -> Tensor:
    """clean-fid's resize of uint8 (N, C, H, W): PIL bicubic on float ('F' mode) channels,
    clipped to [0, 255]. PIL runs on the CPU, so this mode costs CPU time on any device."""
    channels = images.cpu().numpy().astype(np.float32)
    resized = [[np.asarray(Image.fromarray(c).resize((size, size), Image.Resampling.BICUBIC))
                for c in image] for image in channels]
    return torch.from_numpy(np.array(resized).clip(0, 255)).to(images.device)


def _tf_bilinear(images: Tensor) -> Tensor:
    return (resize_tf1_bilinear(images.float(), INPUT_SIZE) - 128) / 128


def _clean(images: Tensor) -> Tensor:
    return (resize_pil_bicubic(images, INPUT_SIZE) - 128) / 128


def _torch_bilinear(images: Tensor) -> Tensor:
    x = F.interpolate(images.float() / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                      align_corners=False)
    return 2 * x - 1


def _tf_bilinear_fused(images: Tensor) -> Tensor:
    if not fused_fits(images, INPUT_SIZE):
        return _tf_bilinear(images)
    return resize_tf1_bilinear_fused(images, INPUT_SIZE, 1 / 128, -1.0)


# uint8 (N, C, H, W) -> float32 (N, C, 299, 299) in the network's range, per reference tool;
# the fast path replaces a mode by its fused twin where it has one
FUSED_MODES: dict[str, Callable[[Tensor], Tensor]] = {"tf_bilinear": _tf_bilinear_fused}
RESIZE_MODES: dict[str, Callable[[Tensor], Tensor]] = {
    "tf_bilinear": _tf_bilinear,
    "clean": _clean,
    "torch_bilinear": _torch_bilinear,
}


def _chain(x: Tensor, *layers: Callable[[Tensor], Tensor]) -> Tensor:
    for layer in layers:
        x = layer(x)
    return x


def _tf_avg_pool(x: Tensor) -> Tensor:
    """TF's 3x3 average pool averages only the pixels inside the image."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: Tensor) -> Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def _reduce_pool(x: Tensor) -> Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=2)


class ConvBN(nn.Module):
    """TF's conv layer: bias-free convolution, BatchNorm with eps=1e-3, ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class MixedA(nn.Module):
    """35x35 block (Mixed_5b-d)."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(x, self.branch5x5_1, self.branch5x5_2),
            _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            _chain(x, _tf_avg_pool, self.branch_pool),
        ], 1)


class ReductionB(nn.Module):
    """35 -> 17 reduction (Mixed_6a)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            _reduce_pool(x),
        ], 1)


class MixedC(nn.Module):
    """17x17 block with factorized 7x7 convolutions (Mixed_6b-e)."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(x, self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
            _chain(x, self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                   self.branch7x7dbl_4, self.branch7x7dbl_5),
            _chain(x, _tf_avg_pool, self.branch_pool),
        ], 1)


class ReductionD(nn.Module):
    """17 -> 8 reduction (Mixed_7a)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            _chain(x, self.branch3x3_1, self.branch3x3_2),
            _chain(x, self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3,
                   self.branch7x7x3_4),
            _reduce_pool(x),
        ], 1)


class MixedE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs (Mixed_7b-c). ``pool`` is TF's average pool in
    Mixed_7b but a max pool in Mixed_7c: a quirk of the 2015 graph that the FID weights (and
    so every published number) depend on."""

    def __init__(self, cin: int, pool: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3dbl = _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(b3dbl), self.branch3x3dbl_3b(b3dbl),
            _chain(x, self.pool, self.branch_pool),
        ], 1)


class InceptionFID(FeatureExtractor):
    """FID Inception-v3: 2048-d pool3 ``features`` and 1008-way ``logits``.

    ``logits`` are pool3 times the classifier weights *without* the bias, as the original
    Inception Score code (and torch-fidelity's ``logits_unbiased``, which it uses for IS) computes
    them; with the bias the scores would not match published ones. The bias is still a
    parameter so that the weights file loads unchanged.
    """

    has_fast_path = True

    def __init__(self, state_dict: Mapping[str, Tensor], sha256: str,
                 resize: str = "tf_bilinear") -> None:
        check_resize(resize)
        super().__init__("inception", sha256, resize, feature_dim=2048, num_classes=1008)
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = MixedA(192, pool_features=32)
        self.Mixed_5c = MixedA(256, pool_features=64)
        self.Mixed_5d = MixedA(288, pool_features=64)
        self.Mixed_6a = ReductionB(288)
        self.Mixed_6b = MixedC(768, c7=128)
        self.Mixed_6c = MixedC(768, c7=160)
        self.Mixed_6d = MixedC(768, c7=160)
        self.Mixed_6e = MixedC(768, c7=192)
        self.Mixed_7a = ReductionD(768)
        self.Mixed_7b = MixedE(1280, pool=_tf_avg_pool)
        self.Mixed_7c = MixedE(2048, pool=_max_pool)
        self.fc = nn.Linear(2048, 1008)
        try:
            self.load_state_dict(state_dict)
        except RuntimeError as error:
            raise UserError(f"the Inception weights do not fit the FID Inception-v3: {error}",
                            HINT) from error
        self.freeze()

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        check_images(images)
        modes = {**RESIZE_MODES, **FUSED_MODES} if self.fast else RESIZE_MODES
        x = modes[self.resize](images).expand(-1, 3, -1, -1)  # gray -> RGB
        x = self.in_memory_format(x)
        x = _chain(x, self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3, _reduce_pool,
                   self.Conv2d_3b_1x1, self.Conv2d_4a_3x3, _reduce_pool,
                   self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                   self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                   self.Mixed_7c)
        features = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return {"features": features, "logits": features.mm(self.fc.weight.T)}


def check_resize(resize: str) -> None:
    if resize not in RESIZE_MODES:
        raise UserError(f"unknown Inception resize mode {resize!r}",
                        f"set metrics.resize to one of: {', '.join(RESIZE_MODES)}")


@FEATURES.register("inception")
def build_inception(options: ExtractorOptions) -> InceptionFID:
    check_resize(options.resize)  # before a download, not after
    path, sha256 = locate_inception_weights(options.inception_weights, options.cache_dir)
    return InceptionFID(load_state_dict(path), sha256, options.resize)
