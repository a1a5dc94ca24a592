"""Optimizers for G and D, with StyleGAN2's correction for lazy regularization."""

from __future__ import annotations

import torch
from torch import nn

from gan_runner.config.schema import OptimizerConfig
from gan_runner.objectives.regularizers import lazy_optimizer_params


def build_optimizer(cfg: OptimizerConfig, net: str, params, lazy_every: int = 1,
                    fused: bool = False) -> torch.optim.Optimizer:
    """``net`` is "g" or "d": picks that side's learning rate and betas (TTUR); a lazy
    regularizer on that side (``lazy_every`` > 1) gets StyleGAN2's lr/beta correction.

    ``fused`` (Adam and SGD; for fp16 on CUDA): fused kernels take the gradient scaler's inf
    check as a device tensor, where the others make the scaler read it on the host (a sync per
    step). RMSprop has no fused kernel and keeps that sync."""
    fused_or_default = True if fused else None
    lr, betas = getattr(cfg, f"{net}_lr"), tuple(getattr(cfg, f"{net}_betas"))
    if lazy_every > 1:
        lr, betas = lazy_optimizer_params(lr, betas, lazy_every)
    beta1, beta2 = betas
    optimizer: torch.optim.Optimizer
    if cfg.name == "adam":
        optimizer = torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=cfg.eps,
                                     weight_decay=cfg.weight_decay, fused=fused_or_default)
    elif cfg.name == "rmsprop":
        optimizer = torch.optim.RMSprop(params, lr=lr, alpha=cfg.alpha, eps=cfg.eps,
                                        momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay, fused=fused_or_default)
    for group in optimizer.param_groups:  # what a schedule scales; saved with the optimizer
        group["initial_lr"] = group["lr"]
    return optimizer


def lr_factor(schedule: str, kimg: float, total_kimg: float) -> float:
    """The share of the initial lr in use at ``kimg``. A pure function of the image count, so a
    resumed run continues the schedule exactly. ``linear`` is WGAN-GP's decay to 0 over the run:
    with Adam each step moves the weights by about lr whatever the gradient, so a G that
    circles its equilibrium only settles as lr shrinks."""
    if schedule == "linear":
        return max(0.0, 1.0 - kimg / total_kimg)
    return 1.0


def scale_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        # checkpoints from before schedules existed hold no initial_lr: theirs was constant
        group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def grad_norm(module: nn.Module) -> torch.Tensor:
    """The global L2 norm of the gradients (0 when none were produced)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:  # on the parameters' device, like a norm would be
        return torch.zeros((), device=next(module.parameters(), torch.zeros(())).device)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
