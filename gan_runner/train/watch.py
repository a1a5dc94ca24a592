"""Early warnings for the failure modes GAN practitioners look for in their plots.

D loss collapsing to 0 (D wins outright and G's gradient vanishes) and generator or
discriminator gradient norms exploding or vanishing. Each warning is raised when a condition
starts, not at every log row, so the log stays readable.
"""

from __future__ import annotations

from typing import Any

D_LOSS_COLLAPSE = 1e-3  # |D loss| below this while D classifies (nearly) every sample right
D_ACCURACY_COLLAPSE = 0.99
GRAD_EXPLODE = 1e3
GRAD_VANISH = 1e-7


class FailureWatch:
    def __init__(self) -> None:
        self._active: set[str] = set()

    def check(self, row: dict[str, Any]) -> list[str]:
        """New warnings for this log row."""
        conditions = {}
        d_loss, accuracy = row.get("loss/D"), row.get("D/accuracy")
        if d_loss is not None and accuracy is not None:
            conditions["d_collapse"] = (
                abs(d_loss) < D_LOSS_COLLAPSE and accuracy > D_ACCURACY_COLLAPSE,
                f"D loss {d_loss:.2e} with D accuracy {accuracy:.3f}: D has won and G gets "
                "almost no gradient (try a regularizer such as r1, label smoothing, or a "
                "lower optimizer.d_lr)")
        for net in ("G", "D"):
            norm = row.get(f"grad_norm/{net}")
            if norm is None:
                continue
            conditions[f"explode_{net}"] = (
                norm > GRAD_EXPLODE,
                f"{net} gradient norm {norm:.2e} is exploding (lower optimizer.{net.lower()}_lr "
                "or add a gradient penalty)")
            conditions[f"vanish_{net}"] = (
                norm < GRAD_VANISH,
                f"{net} gradient norm {norm:.2e} has vanished ({net} has stopped learning)")
        warnings = []
        for key, (active, message) in conditions.items():
            if active and key not in self._active:
                warnings.append(message)
            (self._active.add if active else self._active.discard)(key)
        return warnings
