"""Evaluation metrics: feature extractors, cached statistics and the metric formulas.

The formulas (Fréchet distance, KID, Inception Score, precision/recall, density/coverage) are
pure functions of feature matrices or logits, computed in float64 and checked against the
reference tools (pytorch-fid, torch-fidelity, prdc) so that reported numbers can be compared
with published ones.
"""
