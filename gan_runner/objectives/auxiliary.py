"""The auxiliary objectives of conditional GANs: pure functions of D's head outputs.

ACGAN (Odena et al. 2017) gives D a classifier head; D and G both minimize its cross-entropy
on the labels a sample should have (real labels for real images, the sampled labels for
fakes). InfoGAN (Chen et al. 2016) gives D a Q head that recovers G's latent codes; the
variational bound on their mutual information is, up to a constant, the negative
log-likelihood of the codes under Q: a cross-entropy per categorical code and, for a
Gaussian of unit variance, half the squared error of each continuous code.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from gan_runner.models.conditioning import LatentCodes


def class_cross_entropy(class_logits: Tensor, labels: Tensor) -> Tensor:
    """ACGAN's L_C for one set of samples: mean cross-entropy of the classifier head."""
    return F.cross_entropy(class_logits.float(), labels)


def information_loss(code_logits: Tensor, code_mean: Tensor, z: Tensor,
                     codes: LatentCodes) -> Tensor:
    """InfoGAN's -L_I (to minimize): the codes that ``z`` carries, as Q predicts them."""
    _, indices, continuous = codes.split(z)
    total = code_mean.new_zeros((), dtype=code_mean.float().dtype)
    if indices is not None:
        blocks = code_logits.float().split(list(codes.categorical), dim=1)
        for i, block in enumerate(blocks):
            total = total + F.cross_entropy(block, indices[:, i])
    if codes.continuous:
        total = total + 0.5 * (code_mean.float() - continuous.float()).square().sum(1).mean()
    return total
