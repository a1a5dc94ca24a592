"""The training step of a class-conditional GAN: labels beside the samples, D's auxiliary
heads and their terms as tasks; the plain GAN's graph is untouched."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import Tensor, nn

from gan_runner.augment.base import DAugment
from gan_runner.models.conditioning import LatentCodes
from gan_runner.objectives.auxiliary import class_cross_entropy, information_loss
from gan_runner.objectives.base import LOSSES, REGULARIZERS, LossConfig, RegularizerConfig
from gan_runner.train.phases import AugmentedCritic, Conditional, StepParts, build_phases
from gan_runner.train.scheduler import StepScheduler

from conftest import TINY_FMNIST, TINY_TOY, needs_fmnist

K = 3


class LabelledG(nn.Module):
    """z (N, 2) and c -> points: the class shifts the output, so labels visibly matter."""

    z_dim, num_classes = 2, K

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.shift = nn.Linear(2, 2), nn.Embedding(K, 2)

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        return self.lin(z) + self.shift(c)


class HeadedD(nn.Module):
    """A projection-free D with a class head: records the labels it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk, self.logit, self.classes = nn.Linear(2, 4), nn.Linear(4, 1), nn.Linear(4, K)
        self.seen: list[Tensor | None] = []

    def heads(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        self.seen.append(c)
        h = self.trunk(x).relu()
        return self.logit(h).squeeze(1), {"class_logits": self.classes(h)}

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.heads(x, c)[0]


def acgan_parts(regs: dict[str, RegularizerConfig] | None = None, fakes: bool = True
                ) -> StepParts:
    D = HeadedD()
    return StepParts(LabelledG(), AugmentedCritic(D, DAugment()),
                     LOSSES.get("ns")(LossConfig()),
                     [REGULARIZERS.get(n)(n, c) for n, c in (regs or {}).items()],
                     batch_size=4, conditional=Conditional(labelled=True, num_classes=K,
                                                           acgan_weight=0.5, acgan_fakes=fakes))


def by_name(phases):
    return {p.name: p for p in phases}


def test_a_labelled_phase_reads_the_real_labels_and_the_fakes_sampled_labels():
    phases = by_name(build_phases(acgan_parts()))
    assert phases["D_main"].reads == {"real", "real_c", "z", "c"}
    assert phases["G_main"].reads == {"z", "c"}  # ns: no real forward in the G step
    fake = next(t for t in phases["D_main"].tasks if t.name == "fake")
    assert fake.inputs == ("z", "c")


def test_acgan_adds_its_class_terms_to_both_sides_with_their_weight():
    phases = by_name(build_phases(acgan_parts()))
    assert phases["D_main"].terms == {"d_loss": 1.0, "acgan_D": 0.5}
    assert phases["G_main"].terms == {"g_loss": 1.0, "acgan_G": 0.5}
    assert phases["D_main"].reported == ("acgan_D",)


def run(phase, env):
    return StepScheduler().run(phase, dict(env))


def test_one_trunk_pass_gives_the_logit_and_the_class_head_to_their_tasks():
    parts = acgan_parts()
    D_main = by_name(build_phases(parts))["D_main"]
    real, real_c = torch.randn(4, 2), torch.tensor([0, 1, 2, 0])
    c = torch.tensor([2, 2, 1, 0])
    loss, env = run(D_main, {"real": real, "real_c": real_c, "z": torch.randn(4, 2), "c": c})
    D = parts.critic.D
    assert len(D.seen) == 2  # one pass for the reals, one for the fakes
    assert torch.equal(D.seen[0], real_c) and torch.equal(D.seen[1], c)
    logits, heads = D.heads(real, real_c)
    assert torch.allclose(env["real_logits"], logits)
    assert torch.allclose(env["real_class_logits"], heads["class_logits"])
    expected = (class_cross_entropy(env["real_class_logits"], real_c)
                + class_cross_entropy(env["fake_class_logits"], c))
    assert torch.allclose(env["acgan_D"], expected)
    assert torch.allclose(loss, env["d_loss"] + 0.5 * expected)


def test_acgan_fakes_false_trains_ds_classifier_on_the_real_labels_only():
    D_main = by_name(build_phases(acgan_parts(fakes=False)))["D_main"]
    acgan_D = next(t for t in D_main.tasks if t.name == "acgan_D")
    assert acgan_D.inputs == ("real_class_logits", "real_c")
    real_c = torch.tensor([0, 1, 2, 0])
    loss, env = run(D_main, {"real": torch.randn(4, 2), "real_c": real_c,
                             "z": torch.randn(4, 2), "c": torch.tensor([2, 2, 1, 0])})
    expected = class_cross_entropy(env["real_class_logits"], real_c)
    assert torch.allclose(env["acgan_D"], expected)
    assert torch.allclose(loss, env["d_loss"] + 0.5 * expected)
    G_main = by_name(build_phases(acgan_parts(fakes=False)))["G_main"]
    assert G_main.terms == {"g_loss": 1.0, "acgan_G": 0.5}  # G still answers the classifier


def test_a_conditional_penalty_sees_the_labels_of_its_samples():
    seen = {}

    class Probe(nn.Module):
        def forward(self, x, c=None):
            seen.setdefault("c", c)
            return x.sum(1)

    parts = acgan_parts({"r1": RegularizerConfig(1.0, 2)})
    parts.critic.D = Probe()
    D_reg = by_name(build_phases(parts))["D_reg"]
    assert D_reg.reads == {"real", "real_c"}  # lazy R1: no G forward, no fake labels
    real_c = torch.tensor([1, 0, 2, 1])
    run(D_reg, {"real": torch.randn(4, 2), "real_c": real_c})
    assert torch.equal(seen["c"], real_c)


def test_the_class_cross_entropy_of_an_unsure_head_is_log_k():
    assert class_cross_entropy(torch.zeros(5, K), torch.arange(5) % K).item() == pytest.approx(
        math.log(K))


def test_the_information_term_is_the_codes_negative_log_likelihood_up_to_a_constant():
    codes = LatentCodes(noise=2, categorical=(3,), continuous=1)
    z = codes.join(torch.zeros(2, 2), torch.tensor([[0], [2]]), torch.tensor([[0.5], [-1.0]]))
    perfect = torch.tensor([[9.0, -9, -9], [-9, -9, 9.0]])
    assert information_loss(perfect, torch.tensor([[0.5], [-1.0]]), z, codes).item() < 1e-6
    unsure = information_loss(torch.zeros(2, 3), torch.zeros(2, 1), z, codes)
    assert unsure.item() == pytest.approx(math.log(3) + 0.5 * (0.25 + 1.0) / 2)


@needs_fmnist
@pytest.mark.parametrize("conditioning", ["concat", "projection", "acgan"])
def test_a_conditional_run_gives_d_the_labels_of_its_real_batch(make_trainer, conditioning):
    trainer = make_trainer([*TINY_FMNIST, f"conditioning={conditioning}"])
    D, seen = trainer.state.D, []
    method = "heads" if conditioning == "acgan" else "forward"
    original = getattr(D, method)

    def spy(x, c=None):
        seen.append(c)
        return original(x, c)

    setattr(D, method, spy)
    indices = copy.deepcopy(trainer.state.stream).next_indices()
    trainer.iteration()
    real_c = seen[0]  # D main judges the reals first
    assert torch.equal(real_c, trainer.data.labels[indices])
    fake_c = seen[1]
    assert fake_c.dtype == torch.int64 and len(fake_c) == len(real_c)


def test_a_plain_run_has_no_label_in_its_graph(make_trainer):
    trainer = make_trainer(TINY_TOY)
    assert all(not ({"c", "real_c"} & p.reads) for p in trainer.phases)


def test_a_resume_that_changes_the_number_of_classes_is_one_line(make_trainer, tmp_path):
    from PIL import Image

    from gan_runner.core.errors import UserError

    root = tmp_path / "images"
    for sub in ("cat", "dog"):
        (root / sub).mkdir(parents=True)
        for i in range(8):
            Image.new("L", (8, 8), 30 * i).save(root / sub / f"{i}.png")
    run = [*TINY_FMNIST, "dataset=image_folder", f"dataset.root={root}",
           "dataset.labels=folders", "dataset.resolution=8", "dataset.channels=1",
           "conditioning=projection", "trainer.batch_size=8", "trainer.kimg=0.016",
           "trainer.log_every_kimg=0.008", "trainer.snapshot_every_kimg=0.008"]
    make_trainer(run, tmp_path / "run").run()
    (root / "fox").mkdir()
    for i in range(8):
        Image.new("L", (8, 8), 20 * i).save(root / "fox" / f"{i}.png")
    with pytest.raises(UserError, match="was trained on 2 classes and the data now has 3"):
        make_trainer([*run, "trainer.kimg=0.032"], tmp_path / "run").run()
