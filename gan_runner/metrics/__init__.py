"""Evaluation metrics: feature extractors, cached statistics and the metric formulas.

The formulas (Fréchet distance, KID, Inception Score, precision/recall, density/coverage) are
pure functions of feature matrices or logits, computed in float64 and checked against the
reference tools (pytorch-fid, torch-fidelity, prdc) so that reported numbers can be compared
with published ones.

Each formula's module registers its metric in ``base.METRICS``. Importing every module of the
package here, whatever its name, makes the registry complete as soon as anything under
``gan_runner.metrics`` is imported, and a new metric module needs no list to be entered in.
"""

from gan_runner.core.registry import import_submodules

import_submodules(__name__, __path__)
