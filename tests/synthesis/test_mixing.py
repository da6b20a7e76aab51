import pytest
import torch
from torch.utils.data import DataLoader

from medgan.errors import ConfigError
from medgan.synthesis.mixing import MixSampler, SyntheticBank, SyntheticIndex, SyntheticMixDataset, bank_size
from medgan.synthesis.sampling import load_generative
from medgan.transforms.intensity import HUNormalizer
from tests.synthesis._packages import cgan_config, save_package


class Real(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"target": torch.full((1, 16, 16), -0.5), "source": torch.full((1, 16, 16), -0.5),
                "label": torch.tensor(i % 2), "case": f"real{i}", "slice_frac": torch.tensor(0.1)}


@pytest.fixture
def bank(tmp_path):
    gen = load_generative(save_package(tmp_path / "p", cgan_config(), class_names=["lung", "soft"]))
    return SyntheticBank(gen, bank_size(6, 0.25), classes=[1], seed=7)


def test_bank_size_gives_the_ratio():
    assert bank_size(6, 0.25) == 2 and bank_size(30, 0.5) == 30 and bank_size(5, 0) == 0
    with pytest.raises(ConfigError, match="fraction in \\[0, 1\\)"):
        bank_size(5, 1.0)


def test_mixed_set_serves_real_then_synthetic_items_that_collate(bank):
    norm = HUNormalizer(hu_min=-1024, hu_max=1024)
    mixed = SyntheticMixDataset(Real(), bank, norm, extra={"slice_frac": 0.5})
    assert len(mixed) == 8
    items = [mixed[i] for i in range(8)]
    assert [it["synthetic"] for it in items] == [False] * 6 + [True] * 2
    assert all(int(it["label"]) == 1 for it in items[6:])  # the requested class
    # the synthetic image is the generator's HU, normalised by the real data's normaliser
    expected = norm.forward(bank.model.sample([7], [1])[0])
    assert torch.allclose(items[6]["target"], expected, atol=1e-5) and torch.equal(items[6]["source"], items[6]["target"])
    batch = next(iter(DataLoader(mixed, batch_size=8)))
    assert batch["target"].shape == (8, 1, 16, 16) and batch["synthetic"].sum() == 2


def test_mix_sampler_interleaves_the_ratio_with_any_base_keys(bank):
    base = [(i, i, 0) for i in range(9)]  # tuple keys, like medgan's patch sampler
    sampler = MixSampler(base, len(bank), ratio=0.25, seed=3)
    keys = list(sampler)
    assert len(keys) == len(sampler) == 12
    assert [k for k in keys if not isinstance(k, SyntheticIndex)] == base  # real order kept
    assert sum(isinstance(k, SyntheticIndex) for k in keys) == 3
    assert keys == list(MixSampler(base, len(bank), ratio=0.25, seed=3))  # seeded
    sampler.set_epoch(1)
    assert list(sampler) != keys
    mixed = SyntheticMixDataset(Real(), bank)
    assert mixed[SyntheticIndex(1)]["case"] == "synthetic_1"
