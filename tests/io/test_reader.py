"""read_volume on the formats SimpleITK reads, and the MONAI entry points."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from monai.transforms import LoadImage

from medgan.errors import InputError, MissingFileError
from medgan.io import DicomSeriesReader, LoadCTd, detect_format, read_volume, write_volume


def test_nrrd_matches_simpleitk(ct_chest_path):
    volume = read_volume(ct_chest_path)
    image = sitk.ReadImage(str(ct_chest_path))
    assert volume.shape == (1, 128, 128, 34)
    assert volume.dtype.is_floating_point
    np.testing.assert_array_equal(volume[0].numpy(), sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    # LPS direction diag(-1, -1, 1) becomes a RAS affine with positive in-plane steps
    expected = np.diag([-1.0, -1.0, 1.0, 1.0])
    expected[:3, :3] = expected[:3, :3] @ np.diag(image.GetSpacing()) @ np.diag([-1.0, -1.0, 1.0])
    expected[:3, 3] = np.asarray(image.GetOrigin()) * [-1, -1, 1]
    np.testing.assert_allclose(volume.affine.numpy(), expected, atol=1e-9)
    assert volume.meta["space"] == "RAS"
    assert volume.meta["source_format"] == "nrrd"
    assert volume.meta["filename_or_obj"] == str(ct_chest_path)
    assert list(volume.meta["spatial_shape"]) == [128, 128, 34]


def test_world_coordinate_of_a_voxel_matches_simpleitk(ct_chest_path):
    volume = read_volume(ct_chest_path)
    image = sitk.ReadImage(str(ct_chest_path))
    index = (17, 90, 21)
    lps = np.asarray(image.TransformIndexToPhysicalPoint(index))
    ras = volume.affine.numpy() @ np.array([*index, 1.0])
    np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-6)


def test_single_dicom_file_is_one_slice(ct_small_path):
    volume = read_volume(ct_small_path)
    assert volume.shape == (1, 128, 128, 1)
    assert volume.meta["source_format"] == "dicom"
    assert len(volume.meta["dicom_headers"]) == 1
    assert "PixelData" not in volume.meta["dicom_headers"][0]
    image = sitk.ReadImage(str(ct_small_path))  # GDCM applies the rescale too
    np.testing.assert_array_equal(volume[0, :, :, 0].numpy(), sitk.GetArrayFromImage(image)[0].T)
    np.testing.assert_allclose(
        (volume.affine.numpy() @ [5, 7, 0, 1])[:3],
        np.asarray(image.TransformIndexToPhysicalPoint((5, 7, 0))) * [-1, -1, 1], atol=1e-4,
    )


def test_missing_path_and_unknown_file(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        read_volume(tmp_path / "nope.nrrd")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a supported format"):
        read_volume(text)


def test_truncated_nrrd_is_an_input_error(ct_chest_path, tmp_path):
    broken = tmp_path / "broken.nrrd"
    broken.write_bytes(ct_chest_path.read_bytes()[:4000])
    with pytest.raises(InputError, match="broken.nrrd"):
        read_volume(broken)


def test_detect_format(tmp_path, ct_chest_path, ct_small_path):
    assert detect_format(ct_chest_path) == "nrrd"
    assert detect_format(ct_small_path) == "dicom"
    assert detect_format(tmp_path) == "dicom"


def test_load_ctd_keeps_headers_through_a_deepcopy(ct_small_path):
    import copy

    out = LoadCTd(keys="image")({"image": str(ct_small_path), "other": 1})
    assert out["other"] == 1
    headers = out["image"].meta["dicom_headers"]
    clone = copy.deepcopy(out["image"])
    assert clone.meta["dicom_headers"] is headers  # shared, not copied per transform


def test_monai_load_image_with_dicom_reader(ct_small_path, ct_chest_path, tmp_path):
    series = write_volume(read_volume(ct_chest_path)[:, :32, :24, :5], tmp_path / "series")
    image = LoadImage(reader=DicomSeriesReader(), image_only=True, ensure_channel_first=True)(str(series))
    expected = read_volume(series)
    assert image.shape == (1, 32, 24, 5)
    np.testing.assert_array_equal(image.numpy(), expected.numpy())
    np.testing.assert_allclose(image.affine.numpy(), expected.affine.numpy())
    assert DicomSeriesReader().verify_suffix(str(ct_small_path))
    assert not DicomSeriesReader().verify_suffix(str(ct_chest_path))


def test_load_ctd_in_a_monai_pipeline_and_back_out(tmp_path):
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose, Orientationd, Spacingd

    from tests.dicom_fixtures import load_chest, write_dicom_series

    small = load_chest((slice(30, 62), slice(40, 72), slice(8, 12)))
    write_dicom_series(small, tmp_path / "s", flip_lr=True)
    pipeline = Compose([LoadCTd("image"), Orientationd("image", axcodes="RAS"), Spacingd("image", pixdim=(1.6, 1.4, 2.5))])
    batch = next(iter(DataLoader(Dataset([{"image": str(tmp_path / "s")}] * 2, pipeline), batch_size=2)))
    assert batch["image"].shape == (2, 1, 16, 16, 4)  # 32 × 0.8 mm / 1.6, 32 × 0.7 mm / 1.4
    assert isinstance(batch["image"].meta["dicom_headers"], list) and len(batch["image"].meta["dicom_headers"]) == 2
    one = pipeline({"image": str(tmp_path / "s")})["image"]
    np.testing.assert_allclose(np.diag(one.affine.numpy())[:3], [1.6, 1.4, 2.5], atol=1e-6)
    out = write_volume(one, tmp_path / "resampled")  # headers survived: a derived series of the same study
    import pydicom

    written = pydicom.dcmread(next(out.iterdir()))
    assert written.StudyInstanceUID == one.meta["dicom_headers"][0].StudyInstanceUID
    assert [float(v) for v in written.PixelSpacing] == pytest.approx([1.4, 1.6])


def test_singleton_time_axis_is_dropped_but_4d_refused(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(4, 3, 2)  # (Z, Y, X)
    frame = sitk.GetImageFromArray(data)
    frame.SetSpacing((0.5, 0.6, 2.0))
    sitk.WriteImage(sitk.JoinSeries([frame]), str(tmp_path / "t1.nii.gz"))  # 4D, one time point
    volume = read_volume(tmp_path / "t1.nii.gz")
    assert volume.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(volume[0].numpy(), data.transpose(2, 1, 0))
    np.testing.assert_allclose(np.linalg.norm(volume.affine.numpy()[:3, :3], axis=0), (0.5, 0.6, 2.0))
    sitk.WriteImage(sitk.JoinSeries([frame, frame]), str(tmp_path / "t2.nii.gz"))
    with pytest.raises(InputError, match="4D"):
        read_volume(tmp_path / "t2.nii.gz")
