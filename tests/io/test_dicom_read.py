"""DICOM reading: geometry from the headers, every fixture variant, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from medgan.errors import InputError, MissingFileError
from medgan.io import read_volume
from medgan.io.geometry import LPS_RAS_FLIP
from tests.dicom_fixtures import (
    BAD_INPUT_MESSAGES,
    load_chest,
    make_enhanced_multiframe,
    series_affine_lps,
    write_dicom_series,
)

SMALL = (slice(30, 94), slice(40, 88), slice(8, 16))  # 64 × 48 × 8 voxels of the chest


@pytest.fixture(scope="module")
def small():
    return load_chest(SMALL)


def _expected_ras(shape, **kw):
    return LPS_RAS_FLIP @ series_affine_lps(shape, **kw)


def test_series_reads_exactly_with_its_geometry(chest_dicom_dir):
    chest = load_chest()
    volume = read_volume(chest_dicom_dir)
    assert volume.shape == (1, *chest.shape)
    np.testing.assert_array_equal(volume[0].numpy(), chest)
    np.testing.assert_allclose(volume.affine.numpy(), _expected_ras(chest.shape), atol=1e-6)
    headers = volume.meta["dicom_headers"]
    assert len(headers) == chest.shape[2]
    assert all("PixelData" not in h for h in headers)
    # headers are in z order although InstanceNumber counts down
    assert [int(h.InstanceNumber) for h in headers] == list(range(chest.shape[2], 0, -1))


def test_pixel_spacing_is_row_then_column_in_simpleitk(chest_dicom_dir):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(chest_dicom_dir)))
    image = reader.Execute()
    np.testing.assert_allclose(image.GetSpacing(), (0.8, 0.7, 2.5), atol=1e-6)
    volume = read_volume(chest_dicom_dir)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), volume[0].numpy())
    spacing = np.linalg.norm(volume.affine.numpy()[:3, :3], axis=0)
    np.testing.assert_allclose(spacing, (0.8, 0.7, 2.5), atol=1e-6)


def test_shuffled_file_order_and_names(tmp_path, small):
    write_dicom_series(small, tmp_path / "s", shuffle=True, seed=3)
    np.testing.assert_array_equal(read_volume(tmp_path / "s")[0].numpy(), small)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, JPEGLSLossless])
def test_compressed_series_decode_to_exact_hu(tmp_path, small, syntax, signed):
    write_dicom_series(small, tmp_path / "c", transfer_syntax=syntax, signed=signed)
    volume = read_volume(tmp_path / "c")
    assert volume.meta["dicom_headers"][0].file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(volume[0].numpy(), small)


def test_oblique_series_affine(tmp_path, small):
    write_dicom_series(small, tmp_path / "o", oblique=True, pixel_spacing=(0.6, 0.9), slice_spacing=3.0)
    volume = read_volume(tmp_path / "o")
    expected = _expected_ras(small.shape, oblique=True, pixel_spacing=(0.6, 0.9), slice_spacing=3.0)
    np.testing.assert_allclose(volume.affine.numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(volume[0].numpy(), small)


def test_lr_flipped_series_keeps_world_positions(tmp_path, small):
    write_dicom_series(small, tmp_path / "plain")
    write_dicom_series(small, tmp_path / "flip", flip_lr=True)
    plain, flip = read_volume(tmp_path / "plain"), read_volume(tmp_path / "flip")
    # Stored mirrored, and the row direction says so. Reversing the row direction also reverses the plane
    # normal, so sorting along the normal puts the slices in the opposite order: the same HU sits at the
    # same world point.
    np.testing.assert_array_equal(flip[0].numpy(), small[::-1, :, ::-1])
    i, j, k = 5, 9, 3
    world_plain = plain.affine.numpy() @ [i, j, k, 1]
    world_flip = flip.affine.numpy() @ [small.shape[0] - 1 - i, j, small.shape[2] - 1 - k, 1]
    np.testing.assert_allclose(world_flip, world_plain, atol=1e-6)
    assert flip.affine[0, 0] > 0  # RAS: the flipped row direction (-x in LPS) points to +R


def test_enhanced_multiframe_matches_single_frame(tmp_path, small):
    path = make_enhanced_multiframe(small, tmp_path / "mf.dcm", tmp_path / "frames", oblique=True)
    multi, single = read_volume(path), read_volume(tmp_path / "frames")
    np.testing.assert_array_equal(multi[0].numpy(), small)
    np.testing.assert_allclose(multi.affine.numpy(), single.affine.numpy(), atol=1e-5)
    headers = multi.meta["dicom_headers"]
    assert len(headers) == small.shape[2]
    assert sorted(headers.frame_numbers) == list(range(1, small.shape[2] + 1))
    positions = np.array([h.ImagePositionPatient for h in headers], dtype=float)
    np.testing.assert_allclose(positions, [np.asarray(h.ImagePositionPatient, float) for h in
                                           single.meta["dicom_headers"]], atol=1e-4)


def test_pick_one_of_two_series(bad_inputs):
    with pytest.raises(InputError, match="--series-uid") as err:
        read_volume(bad_inputs["two_series"])
    uids = [part.split(" ")[0] for part in str(err.value).split(": ", 1)[1].split("; ")]
    assert len(uids) == 2
    volumes = [read_volume(bad_inputs["two_series"], series_uid=uid) for uid in uids]
    assert {v.meta["series_uid"] for v in volumes} == set(uids)
    means = sorted(float(v.mean()) for v in volumes)
    assert means[1] - means[0] == pytest.approx(100)  # the second series is the first minus 100 HU
    with pytest.raises(InputError, match="not in"):
        read_volume(bad_inputs["two_series"], series_uid="1.2.3")


@pytest.mark.parametrize("name", sorted(BAD_INPUT_MESSAGES))
def test_bad_inputs_are_refused_with_a_named_reason(bad_inputs, name):
    with pytest.raises((InputError, MissingFileError)) as err:
        read_volume(bad_inputs[name])
    message = str(err.value)
    assert BAD_INPUT_MESSAGES[name] in message
    if name not in ("missing_path", "empty_folder", "not_dicom"):
        assert str(bad_inputs[name]) in message  # the file or folder at fault is named


def test_non_dicom_files_beside_a_series_are_ignored(tmp_path, small):
    write_dicom_series(small, tmp_path / "s")
    (tmp_path / "s" / "README.txt").write_text("exported by a viewer")
    (tmp_path / "s" / ".DS_Store").write_bytes(b"\0\1")
    np.testing.assert_array_equal(read_volume(tmp_path / "s")[0].numpy(), small)


def test_uneven_spacing_is_refused(tmp_path, small):
    import pydicom

    files = write_dicom_series(small, tmp_path / "u")
    ds = pydicom.dcmread(files[4])
    ds.ImagePositionPatient = [float(v) for v in ds.ImagePositionPatient[:2]] + [float(ds.ImagePositionPatient[2]) + 0.6]
    ds.save_as(files[4], enforce_file_format=True)
    with pytest.raises(InputError, match="uneven slice spacing"):
        read_volume(tmp_path / "u")


def test_truncated_compressed_file(tmp_path, small):
    files = write_dicom_series(small, tmp_path / "t", transfer_syntax=JPEG2000Lossless)
    data = files[3].read_bytes()
    files[3].write_bytes(data[: len(data) - 400])
    with pytest.raises(InputError, match=files[3].name):
        read_volume(tmp_path / "t")


def test_gantry_tilt_gives_a_sheared_affine(tmp_path, small):
    import pydicom

    files = write_dicom_series(small, tmp_path / "tilt")
    for k, file in enumerate(files):  # positions drift 0.5 mm in y per slice along a z-normal plane
        ds = pydicom.dcmread(file)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + 0.5 * k, z]
        ds.save_as(file, enforce_file_format=True)
    volume = read_volume(tmp_path / "tilt")
    np.testing.assert_allclose(volume.affine.numpy()[:3, 2], [0.0, -0.5, 2.5], atol=1e-9)  # RAS: y negated
    np.testing.assert_array_equal(volume[0].numpy(), small)


def test_image_series_beside_a_segmentation_is_read(tmp_path, small):
    from tests.dicom_fixtures import make_segmentation

    seg_folder = make_segmentation(small[:16, :16, :3], tmp_path / "study")
    # study/source (CT) and study/seg (SEG): the SEG is not an image and does not make it ambiguous
    volume = read_volume(seg_folder.parent)
    assert volume.shape == (1, 16, 16, 3)


def test_one_series_split_over_two_multiframe_files(tmp_path, small):
    from pydicom.uid import generate_uid

    uids = {"study_uid": generate_uid(), "frame_of_reference_uid": generate_uid()}
    series = generate_uid()
    origin = np.array([-50.0, -45.0, -40.0])
    for part, (lo, hi) in enumerate(((0, 4), (4, 8))):
        make_enhanced_multiframe(
            small[:, :, lo:hi], tmp_path / "series" / f"part{part}.dcm", tmp_path / f"frames{part}",
            enhanced_series_uid=series, instance_number=part + 1, origin=origin + [0, 0, 2.5 * lo], **uids,
        )
    volume = read_volume(tmp_path / "series")
    np.testing.assert_array_equal(volume[0].numpy(), small)
    headers = volume.meta["dicom_headers"]
    assert headers.frame_numbers == (4, 3, 2, 1, 4, 3, 2, 1)  # highdicom keeps InstanceNumber order (top first)
    assert len({h.SOPInstanceUID for h in headers}) == 2


def test_localizer_in_the_series_is_not_a_slice(tmp_path, small):
    import pydicom

    files = write_dicom_series(small, tmp_path / "s")
    scout = pydicom.dcmread(files[0])
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # a coronal scout
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    scout.save_as(tmp_path / "s" / "scout.dcm", enforce_file_format=True)
    volume = read_volume(tmp_path / "s")
    np.testing.assert_array_equal(volume[0].numpy(), small)
    assert all("LOCALIZER" not in h.ImageType for h in volume.meta["dicom_headers"])
