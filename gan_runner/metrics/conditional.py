"""Metrics of a class-conditional generator: how well each class is modelled, and whether the
fakes show the class they were asked for.

``intra_fid`` (Miyato & Koyama 2018) is the mean over classes of the FID between the real
images of a class and the fakes generated with that label, in the evaluation's main feature
space; each class's FID goes into the row's provenance (``fid_per_class``), which gan-eval
prints and gan-report tabulates. ``class_accuracy`` is the share of fakes that the domain
classifier (the extractor's logits: the shipped Fashion-MNIST classifier, or any extractor
with a classifier) assigns to their label, overall and per class (``accuracy_per_class``).
Fakes are drawn with labels in the proportion of the real ones (``Evaluator.fake_batches``),
so every class has its share of samples.
"""

from __future__ import annotations

import numpy as np

from gan_runner.core.errors import UserError
from gan_runner.metrics.base import MetricContext, Outputs, Result, register_metric
from gan_runner.metrics.frechet import FeatureStats, frechet_distance

MIN_PER_CLASS = 2  # a covariance needs two samples; intra-FID wants thousands per class


def _labels(outputs: Outputs, side: str, metric: str) -> np.ndarray:
    labels = outputs.get("labels")
    if labels is None:
        raise UserError(f"metrics.names has '{metric}', and the {side} samples have no labels",
                        "evaluate a class-conditional model on a labelled dataset, or drop "
                        f"'{metric}'")
    return labels


@register_metric("intra_fid", Result("intra_fid", lower_is_better=True, label="intra-FID",
                                     log_scale=True), needs=("features", "labels"), order=1)
def intra_fid_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    real_labels, fake_labels = (_labels(o, s, "intra_fid") for o, s in ((real, "real"),
                                                                          (fake, "fake")))
    classes = int(max(real_labels.max(), fake_labels.max())) + 1
    per_class = []
    for k in range(classes):
        ours, theirs = real["features"][real_labels == k], fake["features"][fake_labels == k]
        if min(len(ours), len(theirs)) < MIN_PER_CLASS:
            raise UserError(f"intra_fid: class {k} has {len(ours)} real and {len(theirs)} fake "
                            "samples", "evaluate on more samples (metrics.num_fakes)")
        real_stats = context.from_real(f"intra_fid/{k}",
                                       lambda ours=ours: FeatureStats.from_features(ours))
        per_class.append(frechet_distance(real_stats, FeatureStats.from_features(theirs)))
    context.note(fid_per_class=[round(v, 4) for v in per_class],
                 fakes_per_class=np.bincount(fake_labels, minlength=classes).tolist())
    return {"intra_fid": float(np.mean(per_class))}


@register_metric("class_accuracy", Result("class_accuracy", lower_is_better=False,
                                          label="class accuracy"),
                 needs=("logits", "labels"), order=2)
def class_accuracy_metric(real: Outputs, fake: Outputs, context: MetricContext
                          ) -> dict[str, float]:
    labels = _labels(fake, "fake", "class_accuracy")
    right = fake["logits"].argmax(axis=1) == labels
    # the classifier's own accuracy on the real images: the ceiling the fakes are read against
    real_labels = real.get("labels")
    if real_labels is not None:
        context.note(classifier_real_accuracy=round(float(
            (real["logits"].argmax(axis=1) == real_labels).mean()), 4))
    # which classes the generator gets wrong (None: no fake of that class was drawn)
    context.note(accuracy_per_class=[round(float(right[labels == k].mean()), 4)
                                     if (labels == k).any() else None
                                     for k in range(int(labels.max()) + 1)])
    return {"class_accuracy": float(right.mean())}
