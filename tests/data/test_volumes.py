"""VolumeStore: the three cache modes give the same volumes; LRU bound; int16 compaction."""

from __future__ import annotations

import pickle

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

import medgan.data.volumes as volumes
from medgan.data.orientation import reorient
from medgan.data.volumes import VolumeStore, compact_hu, header_geometry
from medgan.errors import ConfigError
from tests.data.builders import noisy, shifted, write_case


@pytest.fixture
def three_files(tmp_path, chest_crop):
    return [write_case(shifted(chest_crop, k), tmp_path / f"c{k}.nrrd") for k in range(3)]


def test_compact_hu_keeps_integers_as_int16_only():
    assert compact_hu(torch.tensor([-1024.0, 3071.0])).dtype == torch.int16
    assert compact_hu(torch.tensor([0.5])).dtype == torch.float32
    assert compact_hu(torch.tensor([40000.0])).dtype == torch.float32


def test_modes_agree_and_match_the_file(three_files, tmp_path):
    lazy = VolumeStore(three_files)
    memory = VolumeStore(three_files, cache=True)
    disk = VolumeStore(three_files, cache="disk", cache_dir=tmp_path / "cache")
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(three_files[1])))  # (z, y, x)
    # the file is stored right-to-left, anterior-to-posterior: canonical L-P-S order flips x and y
    expected = torch.from_numpy(np.flip(arr.transpose(2, 1, 0), (0, 1)).copy())
    for store in (lazy, memory, disk):
        assert store.shapes == [(40, 32, 8)] * 3
        item = store[1]
        assert item["image"].dtype == torch.int16 and item["image"].shape == (1, 40, 32, 8)
        assert torch.equal(item["image"][0], expected)
        assert item["affine"].dtype == torch.float64
        assert nib.aff2axcodes(item["affine"].numpy()) == ("L", "P", "S")
    assert any((tmp_path / "cache").iterdir())  # PersistentDataset wrote its tensors on first use
    # RAS affine: LPS x/y axes flipped
    assert torch.allclose(
        lazy.affines[0][:2, :2].abs().diagonal(),
        torch.tensor(sitk.ReadImage(str(three_files[0])).GetSpacing()[:2], dtype=torch.float64),
    )


def test_lazy_store_indexes_from_headers_and_bounds_memory(three_files, monkeypatch):
    calls = []
    real = volumes._read
    monkeypatch.setattr(volumes, "_read", lambda p: calls.append(p) or real(p))
    store = VolumeStore(three_files, max_in_memory=2)
    assert calls == [] and store.shapes == [(40, 32, 8)] * 3  # headers only: no voxels read yet
    for i in (0, 1, 2):
        assert torch.allclose(store.affines[i], store[i]["affine"])  # header geometry == reader geometry
    assert len(calls) == 3 and list(store._lru) == [1, 2]
    store[2]
    store[1]
    assert len(calls) == 3  # both still held
    store[0]
    assert len(calls) == 4 and list(store._lru) == [1, 0]
    clone = pickle.loads(pickle.dumps(store))  # what a DataLoader worker receives
    assert len(clone._lru) == 0 and clone.shapes == store.shapes


def test_header_geometry_matches_read_volume_for_2d_and_oblique(tmp_path, chest_crop):
    from medgan.io import read_volume

    oblique = sitk.Image(chest_crop)
    c, s = np.cos(0.3), np.sin(0.3)
    oblique.SetDirection((c, -s, 0, s, c, 0, 0, 0, 1))
    flat = chest_crop[:, :, 3]  # a 2D image
    for image, name in ((oblique, "o.mha"), (flat, "flat.nrrd")):
        path = write_case(image, tmp_path / name)
        shape, affine = header_geometry(path)
        volume, volume_affine = reorient(read_volume(path).as_tensor(), read_volume(path).affine)
        assert shape == tuple(volume.shape[1:])
        assert torch.allclose(affine, volume_affine)
    folder = tmp_path / "series"
    folder.mkdir()
    assert header_geometry(folder) is None  # DICOM folders need the full reader


def test_float_volumes_stay_float(tmp_path, chest_crop):
    image = sitk.Cast(noisy(chest_crop, 0), sitk.sitkFloat32) * 0.5
    store = VolumeStore([write_case(image, tmp_path / "f.nii.gz")])
    assert store[0]["image"].dtype == torch.float32


def test_cache_setting_errors(three_files):
    with pytest.raises(ConfigError, match="data.cache: got 'ssd'"):
        VolumeStore(three_files, cache="ssd")
    with pytest.raises(ConfigError, match="data.cache_dir"):
        VolumeStore(three_files, cache="disk")
