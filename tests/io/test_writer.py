"""write_volume for NIfTI / NRRD / MHA: exact voxels and geometry, atomic, no silent overwrite."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from monai.data import MetaTensor

from medgan.errors import ConfigError, InputError, OutputExistsError
from medgan.io import output_format, read_volume, write_volume
from medgan.io.geometry import LPS_RAS_FLIP

ITK_NAMES = ["ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha", "ct.mhd"]


@pytest.fixture(scope="module")
def chest(ct_chest_path):
    return read_volume(ct_chest_path)


def _oblique_volume() -> MetaTensor:
    """A small non-axis-aligned, anisotropic, LR-mirrored RAS volume with fractional HU."""
    rng = np.random.default_rng(0)
    data = rng.normal(0, 300, size=(1, 20, 17, 6)).astype(np.float32)
    angle = np.deg2rad(25)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    rot = rot @ np.diag([-1.0, 1.0, 1.0])  # a mirrored (left-handed) grid still has to survive
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.8, 0.7, 2.5])
    affine[:3, 3] = [12.5, -40.25, 101.0]
    return MetaTensor(torch.from_numpy(data), affine=torch.as_tensor(affine))


@pytest.mark.parametrize("name", ITK_NAMES)
def test_ct_round_trip_is_exact_and_int16(chest, tmp_path, name):
    out = write_volume(chest, tmp_path / name)
    image = sitk.ReadImage(str(out))
    assert image.GetPixelID() == sitk.sitkInt16  # CT stays integer HU, not float32
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), chest[0].numpy())
    reference = sitk.ReadImage(str(chest.meta["filename_or_obj"]))
    np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(image.GetDirection(), reference.GetDirection(), atol=1e-4)
    back = read_volume(out)
    np.testing.assert_allclose(back.affine.numpy(), chest.affine.numpy(), atol=1e-4)


@pytest.mark.parametrize("name", ["v.nii.gz", "v.nrrd", "v.mha"])
def test_oblique_geometry_and_rounding(tmp_path, name):
    volume = _oblique_volume()
    back = read_volume(write_volume(volume, tmp_path / name))
    np.testing.assert_array_equal(back[0].numpy(), np.clip(np.rint(volume[0].numpy()), -32768, 32767))
    np.testing.assert_allclose(back.affine.numpy(), volume.affine.numpy(), atol=1e-4)


def test_nibabel_affine_is_flipped_lps(chest, tmp_path):
    out = write_volume(chest, tmp_path / "ct.nii.gz")
    image = sitk.ReadImage(str(out))
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    np.testing.assert_allclose(nib.load(out).affine, LPS_RAS_FLIP @ lps, atol=1e-4)
    np.testing.assert_allclose(nib.load(out).affine, chest.affine.numpy(), atol=1e-4)


def test_map_keeps_float32(tmp_path):
    volume = _oblique_volume() / 1000.0
    out = write_volume(volume, tmp_path / "map.nrrd", kind="map")
    assert sitk.ReadImage(str(out)).GetPixelID() == sitk.sitkFloat32
    np.testing.assert_array_equal(read_volume(out)[0].numpy(), volume[0].numpy())


def test_ct_clips_to_int16_range(tmp_path):
    volume = MetaTensor(torch.tensor([40000.0, -40000.0, 12.6, -12.5]).reshape(1, 2, 2, 1))
    back = read_volume(write_volume(volume, tmp_path / "c.nrrd"))
    assert back.flatten().tolist() == [32767.0, -32768.0, 13.0, -12.0]  # np.rint: halves to even


def test_existing_output_needs_overwrite(chest, tmp_path):
    out = tmp_path / "ct.nrrd"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_volume(chest, out)
    assert out.read_bytes() == b"keep me"
    write_volume(chest, out, overwrite=True)
    assert read_volume(out).shape == chest.shape
    assert [p.name for p in tmp_path.iterdir()] == ["ct.nrrd"]  # no temporary sibling left behind


def test_never_writes_over_its_input(tmp_path, chest):
    copy = write_volume(chest, tmp_path / "in.nrrd")
    volume = read_volume(copy)
    before = copy.read_bytes()
    with pytest.raises(InputError, match="input"):
        write_volume(volume, copy, overwrite=True)
    assert copy.read_bytes() == before


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(InputError):
        write_volume(torch.zeros(2, 4, 4, 4), tmp_path / "x.nrrd")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [("a.nii.gz", None, "nifti"), ("a.NRRD", None, "nrrd"), ("a.mhd", None, "mha"), ("series", None, "dicom"),
     ("series", "DICOM", "dicom"), ("a.nii", "nifti", "nifti")],
)
def test_output_format(name, fmt, expected):
    assert output_format(name, fmt) == expected


@pytest.mark.parametrize(("name", "fmt"), [("a.nii.gz", "nrrd"), ("folder", "nifti"), ("a.nrrd", "png")])
def test_output_format_rejects_contradictions(name, fmt):
    with pytest.raises(ConfigError, match="format"):
        output_format(name, fmt)


def test_map_is_not_dicom(tmp_path):
    with pytest.raises(ConfigError, match="map"):
        write_volume(_oblique_volume(), tmp_path / "series", kind="map")


def test_sheared_grid_refused_for_nifti_kept_by_nrrd(tmp_path):
    """A gantry-tilted series has a slice axis off the plane normal; NIfTI would silently square it."""
    volume = _oblique_volume()
    affine = volume.affine.clone()
    affine[:3, 2] += 0.4 * affine[:3, 1]  # shear the slice axis towards y
    sheared = MetaTensor(volume.as_tensor(), affine=affine)
    with pytest.raises(InputError, match="sheared"):
        write_volume(sheared, tmp_path / "t.nii.gz")
    assert not (tmp_path / "t.nii.gz").exists()
    back = read_volume(write_volume(sheared, tmp_path / "t.nrrd"))
    np.testing.assert_allclose(back.affine.numpy(), affine.numpy(), atol=1e-4)


def _original_index_of_each_voxel(back: MetaTensor, original: MetaTensor) -> np.ndarray:
    """For every voxel of ``back`` (C order), the index in ``original`` at the same world point."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in back.shape[1:]], indexing="ij"), -1).reshape(-1, 3)
    world = index @ back.affine.numpy()[:3, :3].T + back.affine.numpy()[:3, 3]
    inverse = np.linalg.inv(original.affine.numpy())
    source = world @ inverse[:3, :3].T + inverse[:3, 3]
    assert np.abs(source - np.rint(source)).max() < 1e-3  # lands on original voxel centres
    return np.rint(source).astype(int)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(2, 5), st.integers(2, 5), st.integers(1, 4)),
    angles=st.tuples(*[st.floats(-3.1, 3.1)] * 3),
    spacing=st.tuples(*[st.sampled_from([0.5, 0.7, 1.0, 2.5])] * 3),
    mirror=st.booleans(),
    name=st.sampled_from(["v.nii.gz", "v.nrrd", "v.mha", "series"]),
    seed=st.integers(0, 2**16),
)
def test_any_grid_any_format_keeps_every_voxel_at_its_world_point(shape, angles, spacing, mirror, name, seed):
    """Tiny random volumes on random (possibly mirrored) grids, written in a random format, read back:
    each voxel's HU is found again at the same world point (the stored order may differ, e.g. DICOM
    re-orders a left-handed grid along the plane normal)."""
    import tempfile

    transform = sitk.Euler3DTransform()
    transform.SetRotation(*angles)
    rotation = np.asarray(transform.GetMatrix()).reshape(3, 3) @ np.diag([-1.0 if mirror else 1.0, 1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = np.random.default_rng(seed).uniform(-200, 200, 3).round(2)
    data = np.random.default_rng(seed).integers(-1024, 3000, size=(1, *shape)).astype(np.float32)
    volume = MetaTensor(torch.from_numpy(data), affine=torch.as_tensor(affine))
    with tempfile.TemporaryDirectory() as tmp:
        back = read_volume(write_volume(volume, Path(tmp) / name))
    assert back.shape == volume.shape
    source = _original_index_of_each_voxel(back, volume)
    if shape[2] == 1:
        source[:, 2] = 0  # one slice: the file does not define the slice axis' direction
    assert (source >= 0).all() and (source < np.array(shape)).all()
    assert len({tuple(i) for i in source}) == source.shape[0]  # a permutation of the original voxels
    np.testing.assert_array_equal(back[0].numpy().reshape(-1), data[0][tuple(source.T)])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.int16, torch.float64])
def test_any_tensor_dtype_is_written_as_int16_hu(tmp_path, dtype):
    values = torch.tensor([-1000.0, 0.0, 40.0, 1000.0]).reshape(1, 2, 2, 1)
    volume = MetaTensor(values.to(dtype), affine=torch.eye(4, dtype=torch.float64))
    back = read_volume(write_volume(volume, tmp_path / "v.nrrd"))
    assert back.flatten().tolist() == [-1000.0, 0.0, 40.0, 1000.0]  # all exactly representable in bf16


def test_int16_rounding_clips_and_does_not_copy_int16():
    import numpy as np

    from medgan.io.writer import _as_int16_hu

    out = _as_int16_hu(np.array([1.5, -2.5, 40000.2, -40000.0, 3.49], dtype=np.float32))
    assert out.dtype == np.int16 and out.tolist() == [2, -2, 32767, -32768, 3]  # numpy rounds half to even
    assert _as_int16_hu(np.array([70000, -5], dtype=np.int32)).tolist() == [32767, -5]
    already = np.array([1, -1024], dtype=np.int16)
    assert _as_int16_hu(already) is already
