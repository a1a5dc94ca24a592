"""Evaluation protocols under the names papers quote: ``metrics.protocol=fid50k_full``.

A protocol is the set of settings that makes a number comparable with published ones: which
metrics, how many fakes, which real images, the estimator's options and feature space. The
``*_full`` ones and their settings are StyleGAN2-ADA's (Karras et al. 2020, ``metric_main.py``):
50k fakes against the whole training set without flips. ``fid10k_test`` is the cheaper
10k-fakes-against-the-test-split protocol of many GAN papers.

Applying a protocol sets what it fixes; a setting it fixes that the config also changes (to a
different value than the protocol's) is refused, so a row that names a protocol followed it.
Several protocols combine when they agree on every setting they share.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gan_runner.core.errors import UserError
from gan_runner.core.registry import Registry

if TYPE_CHECKING:
    from gan_runner.metrics.base import MetricsConfig


@dataclass(frozen=True)
class Protocol:
    """Settings of ``MetricsConfig`` (``names`` among them) and who defined them."""

    settings: dict[str, Any]
    source: str


PROTOCOLS: Registry[Protocol] = Registry("metrics protocol")
# the whole split, no flips, Inception with TF's resize: what "full" means in StyleGAN2-ADA
_FULL = {"num_fakes": 50_000, "num_reals": None, "real_split": "train", "features": "inception",
         "resize": "tf_bilinear"}
_SG2ADA = "StyleGAN2-ADA metric_main.py"

PROTOCOLS.register("fid50k_full")(Protocol({"names": ["fid"], **_FULL}, _SG2ADA))
PROTOCOLS.register("kid50k_full")(Protocol(
    {"names": ["kid"], **_FULL, "kid_subsets": 100, "kid_subset_size": 1000}, _SG2ADA))
# StyleGAN2-ADA caps the reals at 200k: the same as "the whole split" for any dataset up to
# that size (FFHQ, AFHQ, CIFAR-10, LSUN subsets as used)
PROTOCOLS.register("pr50k3_full")(Protocol(
    {"names": ["pr"], **_FULL, "pr_k": 3, "pr_features": "vgg16"}, _SG2ADA))
PROTOCOLS.register("is50k")(Protocol(
    {"names": ["is"], "num_fakes": 50_000, "features": "inception", "resize": "tf_bilinear",
     "is_splits": 10}, _SG2ADA))
PROTOCOLS.register("ppl2_wend")(Protocol(
    {"names": ["ppl_wend"], "ppl_samples": 50_000, "ppl_epsilon": 1e-4, "ppl_crop": False,
     "lpips_net": "vgg"}, _SG2ADA))
PROTOCOLS.register("fid10k_test")(Protocol(
    {"names": ["fid"], "num_fakes": 10_000, "num_reals": None, "real_split": "test",
     "features": "inception", "resize": "tf_bilinear"}, "10k fakes against the test split"))


def protocol_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in PROTOCOLS:
            raise UserError(f"metrics.protocol has unknown protocol {name!r}",
                            "use one of " + ", ".join(PROTOCOLS.names()))
    return names


def combined(names: list[str]) -> dict[str, Any]:
    """The settings of several protocols; their metric lists add up, anything else they both
    fix must agree."""
    settings: dict[str, Any] = {"names": []}
    fixed_by: dict[str, str] = {}
    for name in names:
        for key, value in PROTOCOLS.get(name).settings.items():
            if key == "names":
                settings["names"] += [m for m in value if m not in settings["names"]]
            elif key in settings and settings[key] != value:
                raise UserError(f"protocols {fixed_by[key]} and {name} disagree on "
                                f"metrics.{key} ({settings[key]!r} vs {value!r})",
                                "evaluate them separately")
            else:
                settings[key], fixed_by[key] = value, name
    return settings


def apply_protocols(cfg: MetricsConfig) -> None:
    """Set what ``cfg.protocol`` fixes, refusing a conflicting explicit setting."""
    names = protocol_names(cfg.protocol)
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING
                         else f.default_factory())  # type: ignore[misc]
                for f in dataclasses.fields(cfg)}
    for key, value in combined(names).items():
        current = getattr(cfg, key)
        same = set(current) == set(value) if key == "names" else current == value
        if current != defaults[key] and not same:
            raise UserError(f"metrics.protocol={cfg.protocol} fixes metrics.{key}={value!r}, "
                            f"and the config sets {current!r}",
                            f"drop metrics.{key}, or drop the protocol")
        setattr(cfg, key, value)
    cfg.protocol = ",".join(names)
