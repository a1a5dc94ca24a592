"""Optimizers for G and D, with StyleGAN2's correction for lazy regularization."""

from __future__ import annotations

import torch
from torch import nn

from gan_runner.config.schema import OptimizerConfig
from gan_runner.objectives.regularizers import lazy_optimizer_params


def build_optimizer(cfg: OptimizerConfig, net: str, params, lazy_every: int = 1
                    ) -> torch.optim.Optimizer:
    """``net`` is "g" or "d": picks that side's learning rate and betas (TTUR); a lazy
    regularizer on that side (``lazy_every`` > 1) gets StyleGAN2's lr/beta correction."""
    lr, betas = getattr(cfg, f"{net}_lr"), tuple(getattr(cfg, f"{net}_betas"))
    if lazy_every > 1:
        lr, betas = lazy_optimizer_params(lr, betas, lazy_every)
    beta1, beta2 = betas
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=cfg.eps,
                                weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=cfg.alpha, eps=cfg.eps,
                                   momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def grad_norm(module: nn.Module) -> torch.Tensor:
    """The global L2 norm of the gradients (0 when none were produced)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
