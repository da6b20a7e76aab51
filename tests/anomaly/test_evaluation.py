"""AUROC / Dice against brute force, and the trained AE's maps on synthetic lesions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medgan.anomaly import auroc, dice, evaluate_lesions
from medgan.errors import InputError


def _brute_auroc(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auroc_matches_pairwise_counting_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=60).astype(float)  # many ties
    labels = rng.random(60) < 0.3
    assert auroc(scores, labels) == pytest.approx(_brute_auroc(scores, labels))
    assert auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert auroc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert auroc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5


def test_auroc_needs_both_classes_and_respects_the_region():
    with pytest.raises(InputError, match="both classes"):
        auroc([1, 2], [1, 1])
    scores, labels = np.array([5.0, 1.0, 2.0, 9.0]), np.array([1, 0, 0, 0])
    assert auroc(scores, labels) == pytest.approx(2 / 3)
    assert auroc(scores, labels, region=np.array([1, 1, 1, 0])) == 1.0  # the 9 is outside the region


def test_dice_known_overlaps():
    a = np.zeros((4, 4, 1), bool)
    b = np.zeros((4, 4, 1), bool)
    a[:2] = True  # 8 voxels
    b[1:3] = True  # 8 voxels, 4 shared
    assert dice(a, b) == pytest.approx(0.5)
    assert dice(a, a) == pytest.approx(1.0)
    assert dice(np.zeros_like(a), np.zeros_like(a)) == 1.0
    assert dice(a, np.zeros_like(a)) == 0.0


def test_trained_ae_ranks_lesion_voxels_above_normal_ones(lesion_case, chest_result):
    # Margin: under chance (a map unrelated to the mask) the AUROC of ~200 lesion vs ~240k body voxels has a
    # standard deviation of about sqrt(1 / (12 * 200)) = 0.02, so 0.75 is > 10 sigma above 0.5. Measured over
    # 4 training seeds x 2 lesion draws: 0.79-0.87 (control below: 0.36-0.41), so the bounds are not flaky.
    _, mask, result = lesion_case
    evaluation = evaluate_lesions(result.map, mask, result.body)
    assert evaluation.voxel_auroc > 0.75, evaluation
    assert evaluation.mean_in > evaluation.mean_out
    # control: the map of the scan WITHOUT lesions does not prefer those locations by much
    control = evaluate_lesions(chest_result.map, mask, chest_result.body)
    assert evaluation.voxel_auroc - control.voxel_auroc > 0.3, (evaluation, control)


def test_thresholded_evaluation_reports_dice_and_the_false_positive_rate(lesion_case):
    _, mask, result = lesion_case
    truth = mask[0].numpy()
    body = result.body[0].numpy()
    threshold = float(np.percentile(result.map[0].numpy()[body], 95))
    evaluation = evaluate_lesions(result.map, mask, result.body, threshold)
    predicted = (result.map[0].numpy() > threshold) & body
    expected = 2 * (predicted & truth).sum() / (predicted.sum() + (truth & body).sum())
    assert evaluation.dice == pytest.approx(expected)
    assert 0.0 < evaluation.dice < 1.0
    assert evaluation.detected_fpr == pytest.approx(float((result.map[0].numpy()[body & ~truth] > threshold).mean()))
