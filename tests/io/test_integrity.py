"""Inputs that would read as silently wrong volumes are refused (or filled on request), in every format."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medgan.errors import ConfigError, InputError
from medgan.io import read_volume


def _float_volume() -> np.ndarray:
    voxels = np.full((3, 4, 5), 40.0, dtype=np.float32)  # (Z, Y, X) for SimpleITK
    voxels[0, 0, 0], voxels[1, 2, 3], voxels[2, 3, 4] = np.nan, np.inf, -np.inf
    return voxels


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_non_finite_voxels_are_counted_or_filled(tmp_path, suffix):
    path = tmp_path / f"f{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(_float_volume()), str(path))
    with pytest.raises(InputError, match=r"'.*f\.[a-z.]+' has 3 of 60 voxels .*\(1 NaN, 2 ±Inf\).*--nan-fill"):
        read_volume(path)
    filled = read_volume(path, nan_fill=-1000)[0].numpy()  # (X, Y, Z)
    assert filled[0, 0, 0] == filled[3, 2, 1] == filled[4, 3, 2] == -1000
    assert (filled == 40).sum() == 57
    with pytest.raises(ConfigError, match="--nan-fill"):
        read_volume(path, nan_fill=float("nan"))


def test_dicom_float_pixel_data_is_checked(tmp_path, ct_small_path, monkeypatch):
    import medgan.io.reader as reader

    real = reader.read_dicom

    def with_nan(path, series_uid=None):
        volume = real(path, series_uid)
        volume.array[0, 0, 0] = np.nan
        return volume

    monkeypatch.setattr(reader, "read_dicom", with_nan)
    with pytest.raises(InputError, match="CT_small.dcm' has 1 of"):
        read_volume(ct_small_path)
    assert read_volume(ct_small_path, nan_fill=0)[0, 0, 0, 0] == 0


def test_cut_and_empty_nifti_are_refused(tmp_path):
    voxels = np.arange(6 * 7 * 8, dtype=np.int16).reshape(8, 7, 6)
    for suffix in (".nii", ".nii.gz"):
        whole = tmp_path / f"whole{suffix}"
        sitk.WriteImage(sitk.GetImageFromArray(voxels), str(whole))
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 4])
        with pytest.raises(InputError, match=rf"'{cut}' is truncated"):
            read_volume(cut)
        np.testing.assert_array_equal(read_volume(whole)[0].numpy(), voxels.transpose(2, 1, 0))
    import nibabel as nib

    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 0), np.int16), np.eye(4)), empty)
    with pytest.raises(InputError, match=r"empty.nii.gz' holds no voxels: its size is \(8, 8, 0\)"):
        read_volume(empty)


@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 4), (5, 6, 4, 1)])
def test_float_nifti_reads_like_itk_where_itk_is_right(tmp_path, shape):
    """Float NIfTI voxels come from nibabel (ITK zeroes NaN); with finite data both readers agree exactly,
    scaling included, and the grid is ITK's."""
    import nibabel as nib

    from medgan.io.itk_io import read_itk

    rng = np.random.default_rng(0)
    turn = np.radians(10)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]]) @ np.diag(
        [0.7, -0.8, 2.5])
    affine[:3, 3] = (-20, 30, 5)
    image = nib.Nifti1Image(rng.normal(0, 300, shape).astype(np.float32), affine)
    image.header.set_slope_inter(2.0, -1024.0)
    path = tmp_path / "f.nii.gz"
    nib.save(image, path)
    array, affine_lps = read_itk(path)
    itk = sitk.ReadImage(str(path))
    if itk.GetDimension() == 4:
        itk = sitk.Extract(itk, (*itk.GetSize()[:3], 0), (0, 0, 0, 0))
    reference = sitk.GetArrayFromImage(itk)
    reference = (reference[None] if reference.ndim == 2 else reference).transpose(2, 1, 0)
    np.testing.assert_array_equal(array, reference.astype(np.float32))
    from medgan.io.geometry import sitk_lps_affine

    np.testing.assert_allclose(affine_lps, sitk_lps_affine(itk), atol=1e-6)
