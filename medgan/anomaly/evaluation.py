"""How well maps find known anomalies: voxel AUROC, Dice of thresholded masks, scan-level AUROC.

Used with synthetic lesions (:mod:`medgan.transforms.lesions`) inserted into normal scans, whose masks are
the ground truth. AUROC is computed from ranks (the Mann–Whitney U statistic, ties counted half), which is
exact and O(n log n); MONAI's ``compute_roc_auc`` walks the sorted scores in a Python loop, too slow for
the millions of voxels of one scan. For the same reason the average precision (AUPRC, the area under the
precision-recall curve as scikit-learn's ``average_precision_score`` defines it) and the best Dice over all
thresholds are computed here from one sort. Dice of a given mask comes from MONAI's ``compute_dice``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from medgan.errors import InputError


def _np(array: object) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def _flat(array: object, region: object | None = None) -> np.ndarray:
    data = _np(array)
    if region is None:
        return data.ravel()
    mask = _np(region)
    if mask.size != data.size:
        raise InputError(f"region has {mask.size} voxels, the map {data.size}")
    return data.ravel()[mask.ravel().astype(bool)]


def auroc(scores: torch.Tensor | np.ndarray | Sequence[float], labels: torch.Tensor | np.ndarray | Sequence[bool],
          region: torch.Tensor | np.ndarray | None = None) -> float:
    """Area under the ROC curve of ``scores`` for the binary ``labels`` (same shape), within ``region``.

    Returns:
        AUROC in [0, 1]: the probability that a random positive scores above a random negative.

    Raises:
        InputError: shapes differ, or the labels are all one class.
    """
    from scipy.stats import rankdata

    s = _flat(scores, region).astype(np.float64)
    y = _flat(labels, region)
    if s.shape != y.shape:
        raise InputError(f"scores ({s.size}) and labels ({y.size}) differ in size")
    y = y.astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        raise InputError(f"AUROC needs both classes; got {positives} positive and {negatives} negative")
    ranks = rankdata(s)  # average ranks: ties count half
    u = ranks[y].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def _ranked(scores: object, labels: object, region: object | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Cumulative true positives and predicted counts at each distinct threshold (highest first), and #positives."""
    s = _flat(scores, region).astype(np.float64)
    y = _flat(labels, region).astype(bool)
    if s.shape != y.shape:
        raise InputError(f"scores ({s.size}) and labels ({y.size}) differ in size")
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise InputError(f"needs both classes; got {positives} positive and {y.size - positives} negative")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each run of tied scores
    return np.cumsum(y)[last], last + 1, positives


def auprc(scores: torch.Tensor | np.ndarray | Sequence[float], labels: torch.Tensor | np.ndarray | Sequence[bool],
          region: torch.Tensor | np.ndarray | None = None) -> float:
    """Average precision of ``scores`` for ``labels`` within ``region``: sum over thresholds of
    precision x recall increase (ties form one threshold). Chance level is the positive fraction.

    Raises:
        InputError: shapes differ, or the labels are all one class.
    """
    tp, predicted, positives = _ranked(scores, labels, region)
    recall_step = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(recall_step * tp / predicted))


def best_dice(scores: torch.Tensor | np.ndarray | Sequence[float], labels: torch.Tensor | np.ndarray | Sequence[bool],
              region: torch.Tensor | np.ndarray | None = None) -> float:
    """The highest Dice of ``scores > t`` with ``labels`` over every threshold ``t`` (within ``region``): the
    segmentation quality an oracle threshold would give (Baur et al. 2021 report it as "best Dice")."""
    tp, predicted, positives = _ranked(scores, labels, region)
    return float(np.max(2.0 * tp / (predicted + positives)))


def dice(mask: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray) -> float:
    """Dice overlap of two binary masks of the same shape; 1.0 when both are empty."""
    from monai.metrics import compute_dice

    pred, ref = torch.from_numpy(_np(mask).astype(bool)), torch.from_numpy(_np(truth).astype(bool))
    if pred.shape != ref.shape:
        raise InputError(f"mask shape {tuple(pred.shape)} differs from the truth {tuple(ref.shape)}")
    if not pred.any() and not ref.any():
        return 1.0
    value = compute_dice(pred.reshape(1, 1, -1).float(), ref.reshape(1, 1, -1).float(), ignore_empty=False)
    return float(value.item())


@dataclass
class LesionEvaluation:
    """Results of :func:`evaluate_lesions` on one scan.

    Attributes:
        voxel_auroc: AUROC of the map for lesion vs. non-lesion voxels inside the body.
        dice: Dice of ``map > voxel threshold`` (inside the body) with the lesion mask (``None`` without threshold).
        mean_in, mean_out: mean map (HU) inside the lesions and in the rest of the body.
        detected_fpr: fraction of non-lesion body voxels above the voxel threshold (``None`` without threshold).
    """

    voxel_auroc: float
    dice: float | None
    mean_in: float
    mean_out: float
    detected_fpr: float | None


def evaluate_lesions(anomaly_map: torch.Tensor, lesion_mask: torch.Tensor, body: torch.Tensor | None = None,
                     voxel_threshold_hu: float | None = None) -> LesionEvaluation:
    """Score one map against the mask of the lesions inserted into its scan.

    Args:
        anomaly_map: ``(1, X, Y, Z)`` HU error of the scan *with* lesions.
        lesion_mask: ``(1, X, Y, Z)`` bool truth (from :class:`medgan.transforms.lesions.SyntheticLesions`).
        body: region that counts (default all voxels).
        voxel_threshold_hu: calibrated voxel threshold, for Dice and the realised false-positive rate.
    """
    truth = _np(lesion_mask).astype(bool)
    region = np.ones_like(truth) if body is None else _np(body).astype(bool).reshape(truth.shape)
    values = _np(anomaly_map).astype(np.float32).reshape(truth.shape)
    inside, outside = values[truth & region], values[~truth & region]
    result = LesionEvaluation(
        voxel_auroc=auroc(values, truth, region), dice=None,
        mean_in=float(inside.mean()) if inside.size else float("nan"),
        mean_out=float(outside.mean()) if outside.size else float("nan"), detected_fpr=None,
    )
    if voxel_threshold_hu is not None:
        predicted = (values > voxel_threshold_hu) & region
        result.dice = dice(predicted, truth & region)
        result.detected_fpr = float((outside > voxel_threshold_hu).mean()) if outside.size else float("nan")
    return result
