"""CTDataModule: batch contract, reproducibility, val slices, pairing modes and config errors."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medgan.data import CTDataModule
from medgan.errors import ConfigError, InputError


def _batches(dm, n=3):
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)]


def test_paired_2d_batch_contract(make_dataset):
    root = make_dataset(labels={"P1_b": 3})
    dm = CTDataModule(root, patch_size=[16, 24], batch_size=2, seed=1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["source"].shape == (2, 1, 16, 24) and batch["target"].shape == (2, 1, 16, 24)
    assert batch["source"].dtype == torch.float32
    assert batch["label"].dtype == torch.long and batch["label"].shape == (2,)
    assert (
        batch["slice_frac"].shape == (2,) and ((0 <= batch["slice_frac"]) & (batch["slice_frac"] <= 1)).all()
    )
    assert set(batch["case"]) <= {"P1_a", "P1_b", "P2_a"}
    # normalised with the default window: [-1024, 3071] HU -> [-1, 1]
    assert batch["target"].min() >= -1 and batch["target"].max() <= 1
    # paired: source is the noisy copy of the same patch, so they agree up to the noise (30 HU ~ 0.015)
    diff = (batch["source"] - batch["target"]).abs().mean()
    assert diff < 0.03
    labels = dict(zip(batch["case"], batch["label"].tolist()))
    assert labels.get("P1_b", 3) == 3 and all(v == 0 for k, v in labels.items() if k != "P1_b")


def test_same_seed_same_batches_other_seed_differs(make_dataset):
    root = make_dataset()
    a = _batches(CTDataModule(root, patch_size=[16, 16], batch_size=2, seed=5))
    b = _batches(CTDataModule(root, patch_size=[16, 16], batch_size=2, seed=5))
    c = _batches(CTDataModule(root, patch_size=[16, 16], batch_size=2, seed=6))
    for x, y in zip(a, b):
        assert (
            x["case"] == y["case"]
            and torch.equal(x["source"], y["source"])
            and torch.equal(x["target"], y["target"])
        )
    assert any(not torch.equal(x["source"], z["source"]) for x, z in zip(a, c))


def test_workers_do_not_change_the_batches(make_dataset):
    root = make_dataset()
    a = _batches(CTDataModule(root, patch_size=[16, 16], batch_size=2, seed=2, num_workers=0), 2)
    b = _batches(CTDataModule(root, patch_size=[16, 16], batch_size=2, seed=2, num_workers=1), 2)
    for x, y in zip(a, b):
        assert torch.equal(x["source"], y["source"])


def test_epochs_differ_but_repeat(make_dataset):
    dm = CTDataModule(make_dataset(), patch_size=[16, 16], seed=0)
    dm.setup("fit")
    sampler = dm.train_sampler()
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    sampler.set_epoch(0)
    assert list(sampler) == first and second != first
    assert len(first) == 3 * 8  # one sample per training slice by default


def test_val_iterates_whole_paired_cases_in_hu(make_dataset, chest_crop):
    root = make_dataset(val=("P3_a", "P4_a"))
    dm = CTDataModule(root, patch_size=[16, 16], seed=0)
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    assert len(batches) == 2  # one whole case per batch: what medgan-infer is given
    x, y, z = chest_crop.GetSize()
    assert all(b["source_hu"].shape == (1, 1, x, y, z) and b["target_hu"].shape == (1, 1, x, y, z) for b in batches)
    assert [b["case"][0] for b in batches] == ["P3_a", "P4_a"]
    # the target is the written full-dose volume, exactly (z order, x/y layout), in HU
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "val" / "target" / "P3_a.nrrd")))  # (z, y, x)
    # the chest CT is stored right-to-left and anterior-to-posterior; the datasets hand the nets the
    # canonical L-P-S voxel order (medgan.data.orientation), i.e. both in-plane axes flipped
    expected = np.flip(arr[3].T, (0, 1)).copy()
    assert torch.allclose(batches[0]["target_hu"][0, 0, :, :, 3], torch.from_numpy(expected).float(), atol=1e-3)
    # val_max_slices keeps the central slices, the affine moves with them
    capped = CTDataModule(root, patch_size=[16, 16], val_max_slices=3)
    capped.setup("validate")
    first = next(iter(capped.val_dataloader()))
    assert first["source_hu"].shape[-1] == first["target_hu"].shape[-1] == 3
    assert torch.equal(first["target_hu"][0, 0, :, :, 0], batches[0]["target_hu"][0, 0, :, :, (z - 3) // 2])
    shift = first["affine"][0, :3, 3] - batches[0]["affine"][0, :3, 3]
    assert torch.allclose(shift, batches[0]["affine"][0, :3, 2] * ((z - 3) // 2))


def test_25d_and_3d_shapes(make_dataset):
    root = make_dataset()
    dm = CTDataModule(root, patch_size=[16, 16], input_mode="2.5d", context_slices=2, batch_size=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["source"].shape == (2, 5, 16, 16) and batch["target"].shape == (2, 1, 16, 16)
    # the centre channel of the source stack is the slice the target comes from
    assert (batch["source"][:, 2:3] - batch["target"]).abs().mean() < 0.03
    dm3 = CTDataModule(root, patch_size=[16, 16, 4], input_mode="3d", batch_size=2)
    dm3.setup()
    batch = next(iter(dm3.train_dataloader()))
    assert batch["source"].shape == (2, 1, 16, 16, 4) and batch["target"].shape == (2, 1, 16, 16, 4)
    val = next(iter(dm3.val_dataloader()))
    assert val["source_hu"].shape[:2] == (1, 1) and val["source_hu"].shape == val["target_hu"].shape


def test_single_and_unpaired(make_dataset):
    root = make_dataset()
    single = next(
        iter(CTDataModule(root, pairing="single", patch_size=[16, 16], batch_size=2).train_dataloader())
    )
    assert torch.equal(single["source"], single["target"])
    # unpaired: remove one target so the piles no longer match; training still works on both piles
    (root / "train" / "target" / "P2_a.nrrd").unlink()
    dm = CTDataModule(root, pairing="unpaired", patch_size=[16, 16], batch_size=2, samples_per_epoch=10)
    dm.setup("fit")
    keys = list(dm.train_sampler())
    assert len(keys) == 10
    assert any(i != j for i, j, _ in keys)  # independent streams
    batch = next(iter(dm.train_dataloader()))
    assert batch["source"].shape == (2, 1, 16, 16)
    with pytest.raises(InputError, match="only in train/source: P2_a"):
        CTDataModule(root, pairing="paired", patch_size=[16, 16]).setup("fit")


def test_scale_mismatch_is_an_input_error(make_dataset):
    import json

    root = make_dataset()
    with pytest.raises(InputError, match="data.scale=2"):
        CTDataModule(root, patch_size=[16, 16], scale=2).setup("fit")
    manifest = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**manifest, "scale": 4}))
    with pytest.raises(ConfigError, match="prepared with scale 4; set data.scale=4"):
        CTDataModule(root, patch_size=[16, 16]).setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"pairing": "twins"}, "data.pairing"),
        ({"input_mode": "4d"}, "data.input_mode"),
        ({"patch_size": [16, 16, 16]}, "data.patch_size"),
        ({"input_mode": "3d", "patch_size": [16, 16]}, "data.patch_size"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"cache": "ram"}, "data.cache"),
        ({"cache": "disk"}, "data.cache_dir"),
        ({"samples_per_epoch": 0}, "data.samples_per_epoch"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        CTDataModule(tmp_path, **{"patch_size": [16, 16], **kwargs})


def test_lazy_loading_reads_each_volume_once_per_window(make_dataset, monkeypatch):
    import medgan.data.volumes as volumes

    root = make_dataset(train=[f"P{i}_a" for i in range(6)], val=())
    calls = []
    real = volumes._read
    monkeypatch.setattr(volumes, "_read", lambda p: calls.append(p) or real(p))

    def reads_per_epoch(samples_per_volume):
        dm = CTDataModule(
            root,
            patch_size=[8, 8],
            batch_size=4,
            max_in_memory=2,
            samples_per_epoch=48,
            samples_per_volume=samples_per_volume,
        )
        dm.setup("fit")
        calls.clear()
        for _ in dm.train_dataloader():
            pass
        return len(calls)

    grouped, iid = reads_per_epoch(8), reads_per_epoch(1)
    print(f"volume reads in an epoch of 48 samples: {grouped} (8 per volume), {iid} (i.i.d.)")
    assert grouped <= 2 * (48 // 8)  # at most one read per case draw, for each of source and target
    assert iid > 2 * grouped


@pytest.mark.slow
def test_lightning_fit_sees_new_samples_each_epoch_and_validates(make_dataset, tmp_path):
    import lightning.pytorch as pl

    class Probe(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Conv2d(1, 1, 3, padding=1)
            self.train_seen: dict[int, list[torch.Tensor]] = {}
            self.val_cases: list[str] = []

        def training_step(self, batch, _):
            self.train_seen.setdefault(self.current_epoch, []).append(batch["source"].clone())
            return torch.nn.functional.l1_loss(self.net(batch["source"]), batch["target"])

        def validation_step(self, batch, _):
            self.val_cases.extend(batch["case"])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    dm = CTDataModule(
        make_dataset(), patch_size=[16, 16], batch_size=2, samples_per_epoch=4, val_max_slices=2
    )
    probe = Probe()
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(probe, dm)
    assert len(probe.train_seen[0]) == len(probe.train_seen[1]) == 2
    assert not torch.equal(
        torch.cat(probe.train_seen[0]), torch.cat(probe.train_seen[1])
    )  # set_epoch reached us
    assert probe.val_cases == ["P3_a"] * 2  # the whole val case, after each epoch
