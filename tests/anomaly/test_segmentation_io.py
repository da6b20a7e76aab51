"""Masks out: ``.seg.nrrd`` read back by slicerio/pynrrd, DICOM SEG read back by dcmqi and checked by dciodvfy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.anomaly import write_dicom_seg, write_seg_nrrd
from medgan.anomaly.segmentation_io import safe_name
from medgan.errors import InputError, OutputExistsError
from medgan.io.geometry import ras_to_lps

SEGIMAGE2ITKIMAGE = shutil.which("segimage2itkimage") or (
    str(Path(__file__).resolve().parents[2] / ".venv/bin/segimage2itkimage"))
DCIODVFY = shutil.which("dciodvfy")


def _blob_mask(shape: tuple[int, int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[20:35, 40:52, 5:9] = True  # asymmetric in x/y/z so a transposed or flipped read-back fails
    mask[70:74, 30:33, 20] = True
    return mask


def test_seg_nrrd_round_trip_keeps_voxels_geometry_and_segment_fields(tmp_path, chest):
    import nrrd
    import slicerio

    mask = _blob_mask(tuple(chest.shape[1:]))
    path = write_seg_nrrd(mask, tmp_path / "case_mask.seg.nrrd", chest.affine, name="anomaly", color=(1.0, 0.5, 0.0))
    seg = slicerio.read_segmentation(str(path))
    assert np.array_equal(seg["voxels"] > 0, mask)
    np.testing.assert_allclose(seg["ijkToLPS"], ras_to_lps(chest.affine.numpy()), atol=1e-6)
    (segment,) = seg["segments"]
    assert segment["name"] == "anomaly" and segment["labelValue"] == 1 and segment["layer"] == 0
    np.testing.assert_allclose(segment["color"], [1.0, 0.5, 0.0])
    header = nrrd.read_header(str(path))
    assert header["space"] == "left-posterior-superior"
    assert header["Segment0_Name"] == "anomaly" and header["Segment0_LabelValue"] == "1"
    assert header["Segment0_Layer"] == "0"
    assert [int(v) for v in header["sizes"]] == list(mask.shape)


def test_seg_nrrd_refuses_to_overwrite_and_checks_the_mask(tmp_path, chest):
    mask = _blob_mask(tuple(chest.shape[1:]))
    path = write_seg_nrrd(mask, tmp_path / "m.seg.nrrd", chest.affine)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_seg_nrrd(~mask, path, chest.affine)
    assert path.read_bytes() == before
    write_seg_nrrd(torch.from_numpy(~mask)[None], path, chest.affine, overwrite=True)
    with pytest.raises(InputError, match="mask must be"):
        write_seg_nrrd(np.zeros((4, 4)), tmp_path / "x.seg.nrrd", chest.affine)
    assert not list(tmp_path.glob(".*medgan-tmp"))  # no temporary left behind


@pytest.fixture(scope="module")
def dicom_seg(tmp_path_factory, chest_dicom_dir):
    from medgan.io import read_volume

    volume = read_volume(chest_dicom_dir)
    mask = _blob_mask(tuple(volume.shape[1:]))
    path = write_dicom_seg(mask, volume.meta["dicom_headers"], tmp_path_factory.mktemp("seg") / "case_seg.dcm",
                           algorithm="test AE")
    return volume, mask, path


def test_dicom_seg_references_the_source_series(dicom_seg):
    import pydicom

    volume, mask, path = dicom_seg
    headers = volume.meta["dicom_headers"]
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.StudyInstanceUID == headers.study_uid and ds.SeriesInstanceUID != headers.series_uid
    assert ds.FrameOfReferenceUID == headers[0].FrameOfReferenceUID
    segment = ds.SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentAlgorithmName == "test AE"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "test AE"
    assert int(ds.NumberOfFrames) == len(headers)
    sources = {h.SOPInstanceUID for h in headers}
    for frame in ds.PerFrameFunctionalGroupsSequence:
        (derivation,) = frame.DerivationImageSequence
        assert derivation.SourceImageSequence[0].ReferencedSOPInstanceUID in sources
    assert int(np.count_nonzero(ds.pixel_array)) == int(mask.sum())


@pytest.mark.skipif(not Path(SEGIMAGE2ITKIMAGE).exists(), reason="dcmqi (segimage2itkimage) not installed")
def test_dcmqi_reads_back_the_mask_on_the_source_geometry(dicom_seg, tmp_path):
    import SimpleITK as sitk

    from medgan.io.geometry import sitk_lps_affine

    volume, mask, path = dicom_seg
    out = tmp_path / "dcmqi"
    out.mkdir()
    run = subprocess.run([SEGIMAGE2ITKIMAGE, "--inputDICOM", str(path), "--outputDirectory", str(out),
                          "--mergeSegments"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (image_file,) = [p for p in out.iterdir() if p.suffix == ".nrrd"]
    image = sitk.ReadImage(str(image_file))
    back = sitk.GetArrayFromImage(image).transpose(2, 1, 0) > 0  # (Z, Y, X) -> (X, Y, Z)
    assert back.shape == mask.shape
    assert np.array_equal(back, mask)
    np.testing.assert_allclose(sitk_lps_affine(image), ras_to_lps(volume.affine.numpy()), atol=1e-3)


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_finds_no_error(dicom_seg):
    _, _, path = dicom_seg
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if "Error" in line]
    assert not errors, errors


def test_dicom_seg_needs_one_header_per_slice(dicom_seg, tmp_path):
    volume, mask, _ = dicom_seg
    with pytest.raises(InputError, match="one source header per mask slice"):
        write_dicom_seg(mask[:, :, :5], volume.meta["dicom_headers"], tmp_path / "x.dcm")
    with pytest.raises(InputError, match=r"\(0028,0011\) Columns"):
        write_dicom_seg(mask[:64], volume.meta["dicom_headers"], tmp_path / "x.dcm")


@pytest.mark.parametrize("text, expected", [("CT 1/2: Chest", "CT_1_2_Chest"), ("../../etc", "etc"),
                                            ("", "case"), ("a" * 300, "a" * 120)])
def test_file_names_from_tags_are_sanitised(text, expected):
    assert safe_name(text) == expected


def test_long_algorithm_names_are_cut_to_the_lo_limit(dicom_seg, tmp_path):
    import pydicom

    volume, mask, _ = dicom_seg
    path = write_dicom_seg(mask, volume.meta["dicom_headers"], tmp_path / "long.dcm", algorithm="x\\" * 50)
    name = pydicom.dcmread(path).SegmentSequence[0].SegmentAlgorithmName
    assert len(name) == 64 and "\\" not in name
