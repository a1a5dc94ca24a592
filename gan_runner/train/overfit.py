"""The r_v overfitting diagnostic (Karras et al. 2020, sec. 3) on a held-out split.

r_v = (E[D(train)] - E[D(held-out)]) / (E[D(train)] - E[D(generated)]): 0 while D scores real
images it never trained on like its training images, 1 once it scores them like fakes. It needs
images D never sees, so it is on only when ``dataset.heldout=N`` reserves N of them. They are
drawn from outside the ``dataset.max_images`` subset of the training split: the training images
stay exactly those of a run without the held-out split, and they are never the images FID/KID
compare against when ``metrics.real_split=test`` (with the default ``train`` the metrics use the
whole split, so there is no set to avoid).

D's outputs are measured on the raw images, with no augmentation and no instance noise, because
(1) the paper defines r_v on the training, validation and generated images themselves, and it
is the training images that D memorizes; (2) the same measurement then compares runs with
augment=none, fixed and ada, whereas augmenting at the current p would change the yardstick
whenever ADA moves p; (3) it draws no random augmentations, so it adds no noise to r_v. D and G
otherwise run as in training (train mode: batch statistics, spectral norm's power iteration),
with their buffers restored and the random state forked, so measuring r_v never changes a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from gan_runner.augment.controller import r_v
from gan_runner.config.schema import TrainConfig
from gan_runner.data.datasets import DATASETS, RealData
from gan_runner.data.images import ImageSet, heldout_indices
from gan_runner.models.base import (
    generate,
    num_classes,
    sample_classes,
    sample_latents,
    with_labels,
)


def heldout_set(dataset_cfg: Any) -> RealData | None:
    """The ``dataset.heldout`` images (never x-flipped), or None when there are none."""
    if not getattr(dataset_cfg, "heldout", 0):
        return None
    whole_cfg = dataclasses.replace(dataset_cfg, max_images=None, hflip=False, heldout=0)
    whole = DATASETS.get(dataset_cfg.name)(whole_cfg)
    indices = heldout_indices(len(whole), dataset_cfg, whole.labels)
    images = whole.uint8_batch(indices)
    return ImageSet(lambda idx: images[idx].clone(), len(images), whole_cfg,
                    f"{dataset_cfg.name} held-out ({len(images)} images)",
                    labels=None if whole.labels is None else whole.labels[indices],
                    class_names=whole.spec.class_names)


@contextmanager
def _unchanged(modules: tuple[nn.Module, ...], device: torch.device) -> Iterator[None]:
    """Run modules without a trace: buffers restored, random state forked."""
    saved = [{name: b.clone() for name, b in m.named_buffers()} for m in modules]
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            yield
    finally:
        for module, buffers in zip(modules, saved, strict=True):
            for name, buffer in module.named_buffers():
                buffer.copy_(buffers[name])


class OverfitProbe:
    """r_v of the current D on fixed samples: as many training images and fakes (from fixed
    latents) as there are held-out images, so successive values differ only because D and G
    did."""

    def __init__(self, train: RealData, heldout: RealData, batch_size: int,
                 device: torch.device, seed: int = 0) -> None:
        self.train, self.heldout = train, heldout
        self.batch_size, self.device, self.seed = batch_size, device, seed
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
        self.train_indices = order[:len(heldout)]

    def __call__(self, G: nn.Module, D: nn.Module) -> dict[str, float]:
        with torch.no_grad(), _unchanged((G, D), self.device):
            train = self._real_logits(D, self.train, self.train_indices)
            heldout = self._real_logits(D, self.heldout, torch.arange(len(self.heldout)))
            latents = torch.Generator().manual_seed(self.seed)
            z = sample_latents(G, len(self.heldout), latents, self.device)
            c = sample_classes(G, len(self.heldout), latents, self.device,
                               self.train.spec.class_counts)
            fake = torch.cat([with_labels(D, generate(G, z[part], c=_part(c, part)), _part(c, part))
                              for part in _parts(len(z), self.batch_size)])
        return {"augment/rv": r_v(train, heldout, fake)}

    def _real_logits(self, D: nn.Module, data: RealData, indices: Tensor) -> Tensor:
        """A conditional D judges each image as its own class (an unconditional one ignores
        the labels it is not handed)."""
        labels = data.labels if num_classes(D) else None
        return torch.cat([with_labels(D, data.batch(chunk).to(self.device),
                                 None if labels is None else labels[chunk].to(self.device))
                          for chunk in indices.split(self.batch_size)])


def _parts(count: int, size: int) -> list[slice]:
    return [slice(start, start + size) for start in range(0, count, size)]


def _part(c: Tensor | None, part: slice) -> Tensor | None:
    return None if c is None else c[part]



def overfit_probe(cfg: TrainConfig, data: RealData, device: torch.device
                  ) -> OverfitProbe | None:
    """The run's r_v probe when ``dataset.heldout`` reserves images for it."""
    heldout = heldout_set(cfg.dataset)
    if heldout is None:
        return None
    return OverfitProbe(data, heldout, cfg.trainer.batch_size, device, cfg.trainer.seed)
