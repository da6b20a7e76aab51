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


def test_samples_per_volume_keeps_marginals_and_windows_local():
    # 6 cases of 3 patients; case lengths differ so the within-patient weights matter
    cases = [c for c, n in enumerate([40, 10, 30, 30, 5, 50]) for _ in range(n)]
    patient_of_case = ["A", "A", "B", "B", "C", "C"]
    w = patient_weights([patient_of_case[c] for c in cases])
    sampler = PairSampler(
        w, None, 6000, seed=0, source_cases=cases, samples_per_volume=8, volumes_per_window=2
    )
    keys = [i for i, _, _ in sampler]
    assert len(keys) == 6000
    per_patient = Counter(patient_of_case[cases[i]] for i in keys)
    assert all(abs(n - 2000) < 250 for n in per_patient.values()), per_patient
    per_sample = Counter(keys)  # within patient A, every slice equally likely (1/50 of A's 2000)
    a_slices = [i for i, c in enumerate(cases) if c in (0, 1)]
    assert max(per_sample[i] for i in a_slices) < 3 * 2000 / 50
    windows = [keys[s : s + 16] for s in range(0, 6000, 16)]
    assert max(len({cases[i] for i in win}) for win in windows) <= 2
    assert keys == [
        i
        for i, _, _ in PairSampler(
            w, None, 6000, seed=0, source_cases=cases, samples_per_volume=8, volumes_per_window=2
        )
    ]


def test_samples_per_volume_needs_cases():
    with pytest.raises(ValueError, match="source_cases"):
        PairSampler(torch.ones(3), None, 5, samples_per_volume=4)


def test_ddp_ranks_split_one_epoch_and_lightning_keeps_the_sampler():
    from torch.utils.data import DistributedSampler

    w = torch.ones(40, dtype=torch.float64)
    whole = list(PairSampler(w, None, 11, seed=4))
    shards = [PairSampler(w, None, 11, seed=4, num_replicas=3, rank=r) for r in range(3)]
    keys = [list(s) for s in shards]
    assert [len(k) for k in keys] == [len(s) for s in shards] == [4, 4, 4]
    assert [k for r in range(4) for k in (keys[0][r], keys[1][r], keys[2][r])][:11] == whole
    assert isinstance(shards[0], DistributedSampler)  # Lightning then uses it as is, with set_epoch
    shards[0].set_epoch(1)
    assert list(shards[0]) != keys[0]
    tiny = [list(PairSampler(w, None, 1, seed=0, num_replicas=4, rank=r)) for r in range(4)]
    assert all(len(k) == 1 for k in tiny)
