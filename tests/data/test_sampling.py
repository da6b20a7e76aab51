"""Per-patient weights and the seeded pair sampler."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from medgan.data.sampling import PairSampler, patient_weights


def test_each_patient_weighs_one():
    patients = ["A"] * 90 + ["B"] * 10 + ["C"]
    w = patient_weights(patients)
    for p in "ABC":
        assert w[[i for i, q in enumerate(patients) if q == p]].sum() == pytest.approx(1.0)


def test_patients_are_drawn_equally_often_whatever_their_length():
    patients = ["long"] * 300 + ["short"] * 10
    sampler = PairSampler(patient_weights(patients), None, num_samples=4000, seed=0)
    counts = Counter(patients[i] for i, _, _ in sampler)
    assert abs(counts["long"] - counts["short"]) < 250  # about 2000 each, not 3870 / 130


def test_paired_reuses_the_index_unpaired_does_not():
    w = torch.ones(50, dtype=torch.float64)
    paired = list(PairSampler(w, None, 100, seed=3))
    assert all(i == j for i, j, _ in paired)
    unpaired = list(PairSampler(w, torch.ones(40, dtype=torch.float64), 100, seed=3))
    assert sum(i == j for i, j, _ in unpaired) < 20
    assert max(j for _, j, _ in unpaired) < 40


def test_reproducible_per_seed_and_epoch():
    w = torch.ones(30, dtype=torch.float64)
    a, b = PairSampler(w, None, 20, seed=1), PairSampler(w, None, 20, seed=1)
    assert list(a) == list(b) and len(a) == 20
    b.set_epoch(2)
    assert list(a) != list(b)
    assert list(PairSampler(w, None, 20, seed=2)) != list(a)


def test_rejects_empty_epochs():
    with pytest.raises(ValueError, match="num_samples"):
        PairSampler(torch.ones(3), None, 0)
