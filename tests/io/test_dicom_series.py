"""Derived DICOM CT series (docs/formats.md): what PACS and Slicer need to accept the output."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from medgan.errors import InputError, OutputExistsError
from medgan.io import read_volume, write_volume
from medgan.io.geometry import LPS_RAS_FLIP
from tests.dicom_fixtures import load_chest, mark_voxels, series_affine_lps, write_dicom_series

SMALL = (slice(30, 94), slice(40, 88), slice(8, 16))


@pytest.fixture(scope="module")
def derived(chest_dicom_dir, tmp_path_factory):
    """The chest series, read, shifted by +7 HU (a stand-in model) and written as a derived series."""
    source = read_volume(chest_dicom_dir)
    out = write_volume(source + 7, tmp_path_factory.mktemp("derived") / "series", description="denoised by test")
    files = sorted(out.iterdir())
    return source, out, [pydicom.dcmread(f) for f in files], [pydicom.dcmread(f) for f in sorted(chest_dicom_dir.iterdir())]


def _sitk_series(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_new_uids_disjoint_from_source(derived):
    _, _, out, src = derived
    assert len({ds.SeriesInstanceUID for ds in out}) == 1
    assert out[0].SeriesInstanceUID != src[0].SeriesInstanceUID
    out_sops = {ds.SOPInstanceUID for ds in out}
    assert len(out_sops) == len(out)
    assert out_sops.isdisjoint({ds.SOPInstanceUID for ds in src})


def test_study_patient_and_frame_of_reference_kept(derived):
    _, _, out, src = derived
    for keyword in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientName", "PatientID", "PatientBirthDate",
                    "PatientSex", "PatientPosition", "Laterality", "StudyDate", "AccessionNumber"):
        assert {str(ds.get(keyword)) for ds in out} == {str(src[0].get(keyword))}, keyword


def test_derivation_references_and_equipment(derived):
    _, _, out, src = derived
    source_sops = {ds.SOPInstanceUID for ds in src}
    for ds in out:
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
        assert "denoised by test" in ds.DerivationDescription and "medgan" in ds.DerivationDescription
        assert len(ds.SourceImageSequence) == 1
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID in source_sops
        assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src[0].SeriesInstanceUID
        codes = [item.PurposeOfReferenceCodeSequence[0].CodeValue for item in ds.ContributingEquipmentSequence]
        assert "109102" in codes
    # same geometry: slice k references source slice k (matched by position)
    by_sop = {ds.SOPInstanceUID: ds for ds in src}
    for ds in out:
        ref = by_sop[ds.SourceImageSequence[0].ReferencedSOPInstanceUID]
        np.testing.assert_allclose(np.asarray(ref.ImagePositionPatient, float),
                                   np.asarray(ds.ImagePositionPatient, float), atol=1e-4)


def test_one_volume_for_slicer(derived):
    _, _, out, _ = derived
    for keyword in ("ImageType", "AcquisitionNumber", "ImageOrientationPatient"):
        assert len({str(ds.get(keyword)) for ds in out}) == 1, keyword


def test_geometry_attributes(derived):
    _, _, out, _ = derived
    out = sorted(out, key=lambda ds: int(ds.InstanceNumber))
    assert [int(ds.InstanceNumber) for ds in out] == list(range(1, len(out) + 1))
    iop = np.asarray(out[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    along = np.array([np.asarray(ds.ImagePositionPatient, float) @ normal for ds in out])
    steps = np.diff(along)
    assert np.all(steps > 0)  # InstanceNumber follows space
    assert np.ptp(steps) < 0.01
    np.testing.assert_allclose([float(ds.SliceThickness) for ds in out], 2.5, atol=1e-6)
    assert [float(v) for v in out[0].PixelSpacing] == [0.7, 0.8]  # [row, column]


def test_pixels_are_signed_int16_hu(derived):
    source, folder, out, _ = derived
    for ds in out:
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 16, 15, 1)
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.RescaleType) == (1.0, 0.0, "HU")
        assert "WindowCenter" in ds and "WindowWidth" in ds
    image = _sitk_series(folder)
    assert image.GetPixelID() == sitk.sitkInt16
    np.testing.assert_allclose(image.GetSpacing(), (0.8, 0.7, 2.5), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), source[0].numpy() + 7)


def test_file_format_is_uncompressed_part10_even_from_jpeg2000(tmp_path):
    small = load_chest(SMALL)
    write_dicom_series(small, tmp_path / "j2k", transfer_syntax=JPEG2000Lossless)
    out = write_volume(read_volume(tmp_path / "j2k"), tmp_path / "out")
    for file in out.iterdir():
        assert file.read_bytes()[128:132] == b"DICM"
        ds = pydicom.dcmread(file)  # no force: a valid Part 10 file
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    np.testing.assert_array_equal(read_volume(out)[0].numpy(), small)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_dciodvfy_has_no_errors(derived, tmp_path, ct_chest_path, ct_small_path):
    from tests.dicom_fixtures import make_enhanced_multiframe

    _, folder, _, _ = derived
    small = load_chest(SMALL)[:, :, :3]
    enhanced = make_enhanced_multiframe(small, tmp_path / "mf.dcm", tmp_path / "frames", oblique=True)
    outputs = [
        folder,  # derived from a classic series
        write_volume(read_volume(ct_chest_path)[:, :, :, :3], tmp_path / "new"),  # NRRD: new study
        write_volume(read_volume(enhanced), tmp_path / "from_enhanced"),
        write_volume(read_volume(ct_small_path), tmp_path / "from_ct_small"),  # a real scanner header
    ]
    for out in outputs:
        file = sorted(out.iterdir())[0]
        result = subprocess.run(["dciodvfy", str(file)], capture_output=True, text=True, timeout=60)
        errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], f"{out.name}: {errors}"


def test_nrrd_to_dicom_new_study_round_trip(ct_chest_path, tmp_path):
    volume = read_volume(ct_chest_path)
    out = write_volume(volume, tmp_path / "series")
    image, reference = _sitk_series(out), sitk.ReadImage(str(ct_chest_path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))
    for getter in ("GetSpacing", "GetOrigin", "GetDirection"):
        np.testing.assert_allclose(getattr(image, getter)(), getattr(reference, getter)(), atol=1e-4)
    first = pydicom.dcmread(sorted(out.iterdir())[0])
    assert first.Modality == "CT" and "SourceImageSequence" not in first
    assert list(first.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]


@pytest.mark.parametrize("name", ["ct.nii.gz", "ct.nrrd", "ct.mha"])
def test_dicom_to_itk_formats_round_trip(chest_dicom_dir, tmp_path, name):
    source = read_volume(chest_dicom_dir)
    out = write_volume(source, tmp_path / name)
    image, reference = sitk.ReadImage(str(out)), _sitk_series(chest_dicom_dir)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))
    for getter in ("GetSpacing", "GetOrigin", "GetDirection"):
        np.testing.assert_allclose(getattr(image, getter)(), getattr(reference, getter)(), atol=1e-4)


def test_super_resolved_volume_gets_new_grid_in_the_source_study(tmp_path):
    small = load_chest(SMALL)
    files = write_dicom_series(small, tmp_path / "src")
    source = read_volume(tmp_path / "src")
    affine = source.affine.clone()
    affine[:3, :2] /= 2  # twice the in-plane resolution, same slices
    fine = MetaTensor(torch.repeat_interleave(torch.repeat_interleave(source.as_tensor(), 2, 1), 2, 2), affine=affine)
    out = write_volume(fine, tmp_path / "sr", reference=source)
    ds = pydicom.dcmread(sorted(out.iterdir())[0])
    assert (ds.Rows, ds.Columns) == (2 * small.shape[1], 2 * small.shape[0])
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.35, 0.4])
    assert ds.StudyInstanceUID == pydicom.dcmread(files[0]).StudyInstanceUID
    back = read_volume(out)
    np.testing.assert_allclose(back.affine.numpy(), affine.numpy(), atol=1e-4)


@pytest.mark.parametrize("variant", [{"oblique": True}, {"flip_lr": True}, {"flip_lr": True, "oblique": True}])
@pytest.mark.parametrize("target", ["series", "out.nii.gz"])
def test_marked_voxels_keep_world_coordinates(tmp_path, variant, target):
    """Reader → identity model → writer: three marked voxels stay at their world points."""
    small = load_chest(SMALL)
    voxels = [(3, 4, 1), (60, 10, 4), (20, 40, 7)]
    values = [3001, 3002, 3003]  # above the CT's maximum, so each value marks one voxel
    write_dicom_series(mark_voxels(small, voxels, values), tmp_path / "in", **variant)
    # the fixture's own geometry (not medgan's) gives the expected LPS world points
    affine = series_affine_lps(small.shape, flip_lr=False, oblique=variant.get("oblique", False))
    expected = {v: (affine @ [*ijk, 1])[:3] for ijk, v in zip(voxels, values)}

    volume = read_volume(tmp_path / "in")
    identity = volume * 1  # the "model"; a MetaTensor op keeps affine and meta
    out = write_volume(identity, tmp_path / target)

    if target == "series":
        image = _sitk_series(out)
    else:
        image = sitk.ReadImage(str(out))
    array = sitk.GetArrayFromImage(image)  # (Z, Y, X)
    for value, world in expected.items():
        z, y, x = (int(c[0]) for c in np.nonzero(array == value))
        np.testing.assert_allclose(image.TransformIndexToPhysicalPoint((x, y, z)), world, atol=1e-3)
        # and medgan's own RAS affine agrees
        ras = LPS_RAS_FLIP[:3, :3] @ world
        index = np.argwhere(identity[0].numpy() == value)[0]
        np.testing.assert_allclose((identity.affine.numpy() @ [*index, 1])[:3], ras, atol=1e-3)


def test_folder_overwrite_rules(tmp_path):
    small = load_chest(SMALL)
    volume = MetaTensor(torch.from_numpy(small[None].astype(np.float32)))
    out = write_volume(volume, tmp_path / "s")
    with pytest.raises(OutputExistsError):
        write_volume(volume, out)
    first = {f.name: pydicom.dcmread(f).SOPInstanceUID for f in out.iterdir()}
    write_volume(volume + 1, out, overwrite=True)
    second = {f.name: pydicom.dcmread(f).SOPInstanceUID for f in out.iterdir()}
    assert first.keys() == second.keys() and set(first.values()).isdisjoint(second.values())
    np.testing.assert_array_equal(read_volume(out)[0].numpy(), small + 1)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="non-DICOM"):
        write_volume(volume, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_source_files_untouched(tmp_path):
    small = load_chest(SMALL)
    files = write_dicom_series(small, tmp_path / "src")
    before = {f: f.read_bytes() for f in files}
    write_volume(read_volume(tmp_path / "src") * 0.5, tmp_path / "out")
    assert {f: f.read_bytes() for f in files} == before


def test_lossy_source_stays_flagged_lossy(tmp_path):
    from pydicom.uid import JPEG2000

    small = load_chest(SMALL)[:, :, :2]
    write_dicom_series(small, tmp_path / "src")
    source = read_volume(tmp_path / "src")
    for header in source.meta["dicom_headers"]:  # as if the source had been lossy JPEG 2000
        header.file_meta.TransferSyntaxUID = JPEG2000
    ds = pydicom.dcmread(sorted(write_volume(source, tmp_path / "derived").iterdir())[0])
    assert (ds.LossyImageCompression, ds.LossyImageCompressionMethod) == ("01", "ISO_15444_1")
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
