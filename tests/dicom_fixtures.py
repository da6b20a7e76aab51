"""DICOM test fixtures built from real CT (slicerio's CTChest4.nrrd), written with pydicom only.

These builders are deliberately independent of ``medgan.io`` (the code under test): each one computes
its own geometry from the arguments, so a test can compare what medgan reads with what was written.
Other areas import them (``from tests.dicom_fixtures import write_dicom_series``).

Geometry of :func:`write_dicom_series` (LPS, see :func:`series_affine_lps`): slice ``k`` sits at
``origin + k * slice_spacing * normal``; pixel ``(column i, row j)`` at ``+ i * dx * row_dir + j * dy * col_dir``
with ``pixel_spacing = (dy, dx)`` in DICOM's [row, column] order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

CHEST_SHAPE = (128, 128, 34)  # (X, Y, Z) of CTChest4.nrrd
FIXTURE_DATE = "20240102"


def chest_path() -> Path:
    """slicerio's chest CT (128×128×34, HU, NRRD)."""
    import slicerio

    return Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"


def load_chest(crop: tuple[slice, slice, slice] | None = None) -> np.ndarray:
    """The chest CT as ``(X, Y, Z)`` int16 HU (read with SimpleITK, not medgan), optionally cropped."""
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(sitk.ReadImage(str(chest_path()))).transpose(2, 1, 0).astype(np.int16)
    return np.ascontiguousarray(array[crop] if crop is not None else array)


def _rotation(degrees_z: float, degrees_x: float) -> np.ndarray:
    a, b = np.deg2rad(degrees_z), np.deg2rad(degrees_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rx @ rz


def series_orientation(flip_lr: bool = False, oblique: bool = False) -> np.ndarray:
    """ImageOrientationPatient (6 floats, LPS) of a fixture: axial, LR-flipped and/or oblique (30° about
    the patient's z axis, then 15° about x)."""
    row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    if flip_lr:
        row = -row  # columns run towards the patient's right
    if oblique:
        rot = _rotation(30.0, 15.0)
        row, col = rot @ row, rot @ col
    return np.concatenate([row, col])


def series_affine_lps(
    shape: Sequence[int],
    pixel_spacing: Sequence[float] = (0.7, 0.8),
    slice_spacing: float = 2.5,
    flip_lr: bool = False,
    oblique: bool = False,
    origin: Sequence[float] = (-50.0, -45.0, -40.0),
) -> np.ndarray:
    """4×4 voxel ``(column, row, slice)`` → LPS mm affine of :func:`write_dicom_series` with these arguments.

    With ``flip_lr`` the stored columns are mirrored *and* the row direction reversed, so voxel content stays
    at the same world position as without the flip: only the storage order changes.
    """
    iop = series_orientation(flip_lr, oblique)
    row, col = iop[:3], iop[3:]
    unflipped = series_orientation(False, oblique)
    normal = np.cross(unflipped[:3], unflipped[3:])  # slices step the same way with or without the flip
    dy, dx = pixel_spacing
    first = np.asarray(origin, dtype=np.float64)
    if flip_lr:
        first = first - row * dx * (shape[0] - 1)  # the last stored column is where column 0 was
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1] = row * dx, col * dy
    affine[:3, 2] = normal * slice_spacing
    affine[:3, 3] = first
    return affine


def _as_xyz(volume_or_array: object) -> np.ndarray:
    data = volume_or_array
    if hasattr(data, "detach"):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise ValueError(f"expected (X, Y, Z) or (1, X, Y, Z), got {data.shape}")
    return np.rint(data).astype(np.int32)


def _base_dataset(study_uid: str, for_uid: str, series_uid: str, series_number: int, description: str,
                  patient_id: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.PatientName = "Fixture^Chest"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = FIXTURE_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = "101010"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = "A1"
    ds.StudyDescription = "medgan fixture chest"
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.PatientPosition = "HFS"
    ds.Laterality = ""  # type 2C in General Series: dciodvfy wants it present
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "medgan-fixture"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = "120"
    ds.AcquisitionNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = -600
    ds.WindowWidth = 1500
    return ds


def write_dicom_series(
    volume_or_array: object,
    folder: str | Path,
    *,
    pixel_spacing: Sequence[float] = (0.7, 0.8),
    slice_spacing: float = 2.5,
    flip_lr: bool = False,
    oblique: bool = False,
    origin: Sequence[float] = (-50.0, -45.0, -40.0),
    transfer_syntax: str | None = None,
    shuffle: bool = False,
    signed: bool = True,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 2,
    description: str = "fixture chest",
    patient_id: str = "MEDGAN-FIX-1",
    seed: int = 0,
) -> list[Path]:
    """Write ``(X, Y, Z)`` HU (array, tensor or ``(1, X, Y, Z)``) as a scanner-like CT series.

    Args:
        pixel_spacing: DICOM order **[row, column]** = (dy, dx) mm: (0.7, 0.8) reads in SimpleITK as
            spacing (0.8, 0.7, slice_spacing).
        flip_lr / oblique / origin: geometry, see :func:`series_affine_lps`.
        transfer_syntax: ``None`` (Explicit VR Little Endian) or a UID pydicom can encode
            (``RLELossless``, ``JPEG2000Lossless``, ``JPEGLSLossless``).
        shuffle: random file names written in random order (directory order says nothing).
        signed: int16 storage with RescaleIntercept -1024 (GE-like); else uint16 with intercept -3024.
        seed: randomness of ``shuffle`` and the UIDs' order.

    Returns:
        The file of each slice, in spatial order (slice 0 first). InstanceNumber counts *down* from the
        first slice (N .. 1), as head-first scanners number from the top, so readers must sort by position.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = _as_xyz(volume_or_array)
    if flip_lr:
        data = data[::-1]
    n_x, n_y, n_z = data.shape
    intercept = -1024 if signed else -3024
    stored = data - intercept
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError(f"HU range [{data.min()}, {data.max()}] does not fit {dtype.__name__} storage")
    affine = series_affine_lps(data.shape, pixel_spacing, slice_spacing, flip_lr, oblique, origin)
    iop = series_orientation(flip_lr, oblique)
    rng = np.random.default_rng(seed)
    study_uid = study_uid or generate_uid()
    for_uid = frame_of_reference_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    names = [f"IM{k + 1:04d}.dcm" for k in range(n_z)]
    if shuffle:
        names = [f"{rng.integers(16**8):08x}{k:03d}" for k in rng.permutation(n_z)]
    order = rng.permutation(n_z) if shuffle else np.arange(n_z)
    paths: list[Path] = [folder / names[k] for k in range(n_z)]
    for k in order:
        ds = _base_dataset(study_uid, for_uid, series_uid, series_number, description, patient_id)
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = int(n_z - k)
        position = affine[:3, 3] + k * affine[:3, 2]
        ds.ImagePositionPatient = [round(float(v), 6) for v in position]
        ds.ImageOrientationPatient = [round(float(v), 8) for v in iop]
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
        ds.SliceThickness = slice_spacing
        ds.SliceLocation = round(float(position @ np.cross(iop[:3], iop[3:])), 6)
        ds.Rows, ds.Columns = n_y, n_x
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleIntercept = intercept
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T.astype(dtype)).tobytes()
        ds["PixelData"].VR = "OW"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if transfer_syntax is not None:
            ds.compress(transfer_syntax)
        ds.save_as(paths[k], enforce_file_format=True)
    return paths


def make_enhanced_multiframe(volume_or_array: object, path: str | Path, workdir: str | Path, *,
                             enhanced_series_uid: str | None = None, instance_number: int = 1, **series_kwargs
                             ) -> Path:
    """An enhanced multi-frame CT (highdicom's Legacy Converted Enhanced CT Image) of the same geometry
    :func:`write_dicom_series` gives with ``series_kwargs``; the single-frame files go to ``workdir``.
    Pass the same ``enhanced_series_uid`` (and study/frame-of-reference UIDs) to split one volume over
    several multi-frame files of one series."""
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    files = write_dicom_series(volume_or_array, workdir, **series_kwargs)
    legacy = [pydicom.dcmread(f) for f in files]
    enhanced = LegacyConvertedEnhancedCTImage(
        legacy, series_instance_uid=enhanced_series_uid or generate_uid(), series_number=7,
        sop_instance_uid=generate_uid(), instance_number=instance_number,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enhanced.save_as(path, enforce_file_format=True)
    return path


def mark_voxels(array: np.ndarray, voxels: Sequence[tuple[int, int, int]], values: Sequence[int]) -> np.ndarray:
    """A copy of ``(X, Y, Z)`` HU with ``values`` at ``voxels`` (values must be unique in the result)."""
    marked = np.array(array, copy=True)
    for (i, j, k), value in zip(voxels, values):
        marked[i, j, k] = value
    return marked


#: Fragment of the one-line error each bad input of :func:`make_bad_inputs` must produce.
BAD_INPUT_MESSAGES = {
    "missing_path": "does not exist",
    "empty_folder": "no DICOM file",
    "not_dicom": "not a supported format",
    "two_series": "2 image series",
    "missing_slice": "missing slice",
    "duplicate_slice": "duplicate slice position",
    "varying_orientation": "ImageOrientationPatient (0020,0037) varies",
    "truncated": "truncated",
    "truncated_header": "truncated",
    "sr": "structured report (SR)",
    "rtstruct": "RT structure set (RTSTRUCT)",
    "seg": "segmentation (SEG)",
    # DICOM that reads but is not a CT volume
    "zero_byte_dicom": "truncated",
    "garbage_dicom": "not a DICOM file",
    "no_pixel_data": "no PixelData",
    "varying_spacing": "PixelSpacing (0028,0030) varies",
    "no_position": "lacks ImagePositionPatient (0020,0032)",
    "non_ct_modality": "Modality (0008,0060) is 'MR'",
    "rgb_secondary_capture": "Modality (0008,0060) is 'OT'",
    "dicom_named_nii": "unreadable",
    "symlink_loop": "does not exist",
    # volume files that ITK alone would read as a wrong volume, or not read at all
    "nan_nifti": "(2 NaN, 0 ±Inf)",
    "inf_nifti": "(0 NaN, 1 ±Inf)",
    "nan_nrrd": "(1 NaN, 0 ±Inf)",
    "inf_mha": "(0 NaN, 1 ±Inf)",
    "all_nan_nifti": "256 of 256 voxels",
    "cut_nii_gz": "truncated",
    "cut_nii": "truncated",
    "cut_nrrd": "truncated",
    "cut_mha": "truncated",
    "zero_slice_nifti": "holds no voxels",
    "zero_slice_nrrd": "unreadable",
    "zero_byte_nifti": "unreadable",
    "garbage_nifti": "unreadable",
    "text_named_nii_gz": "corrupt",
    "nifti_4d": "is 4D",
    "rgb_nrrd": "3 components per voxel",
    "nrrd_lying_sizes": "unreadable",
    "nrrd_lying_type": "unreadable",
    "nhdr_without_data": "unreadable",
}


def make_bad_inputs(root: str | Path) -> dict[str, Path]:
    """One input per way a user can hand medgan something it must refuse (keys of ``BAD_INPUT_MESSAGES``).

    Built from a 32×32×5 crop of the chest CT so the whole set takes well under a second.
    """
    import shutil

    from pydicom.data import get_testdata_file

    root = Path(root)
    small = load_chest((slice(48, 80), slice(48, 80), slice(10, 15)))
    cases: dict[str, Path] = {"missing_path": root / "does-not-exist"}
    (root / "empty_folder").mkdir(parents=True)
    cases["empty_folder"] = root / "empty_folder"
    cases["not_dicom"] = root / "notes.txt"
    cases["not_dicom"].write_text("not an image\n")

    study, frame = generate_uid(), generate_uid()
    cases["two_series"] = root / "two_series"
    write_dicom_series(small, cases["two_series"] / "a", study_uid=study, frame_of_reference_uid=frame)
    write_dicom_series(small - 100, cases["two_series"] / "b", study_uid=study, frame_of_reference_uid=frame,
                       series_number=3, description="second series")

    cases["missing_slice"] = root / "missing_slice"
    write_dicom_series(small, cases["missing_slice"])[2].unlink()

    cases["duplicate_slice"] = root / "duplicate_slice"
    files = write_dicom_series(small, cases["duplicate_slice"])
    twin = pydicom.dcmread(files[1])
    twin.SOPInstanceUID = twin.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    twin.save_as(cases["duplicate_slice"] / "twin.dcm", enforce_file_format=True)

    cases["varying_orientation"] = root / "varying_orientation"
    files = write_dicom_series(small, cases["varying_orientation"])
    tilted = pydicom.dcmread(files[3])
    tilted.ImageOrientationPatient = [float(v) for v in series_orientation(oblique=True)]
    tilted.save_as(files[3], enforce_file_format=True)

    for name, keep in (("truncated", 0.5), ("truncated_header", 0.02)):
        cases[name] = root / name
        files = write_dicom_series(small, cases[name])
        data = files[2].read_bytes()
        files[2].write_bytes(data[: int(len(data) * keep)])

    for name, source in (("sr", "test-SR.dcm"), ("rtstruct", "rtstruct.dcm")):
        cases[name] = root / name
        cases[name].mkdir()
        shutil.copy(get_testdata_file(source), cases[name] / source)
    cases["seg"] = make_segmentation(small, root / "seg")
    _add_odd_dicom(root, small, cases)
    _add_odd_volume_files(root, cases)
    return cases


def _edited_series(small: np.ndarray, folder: Path, edit) -> Path:
    """A fixture series whose datasets pass through ``edit(index, ds)`` before they are saved again."""
    for k, file in enumerate(write_dicom_series(small, folder)):
        ds = pydicom.dcmread(file)
        edit(k, ds)
        ds.save_as(file, enforce_file_format=True)
    return folder


def _add_odd_dicom(root: Path, small: np.ndarray, cases: dict[str, Path]) -> None:
    import os

    from pydicom.data import get_testdata_file
    from pydicom.uid import SecondaryCaptureImageStorage

    cases["zero_byte_dicom"] = root / "empty.dcm"
    cases["zero_byte_dicom"].write_bytes(b"")
    cases["garbage_dicom"] = root / "garbage"
    cases["garbage_dicom"].write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())

    no_pixels = pydicom.dcmread(write_dicom_series(small, root / "no_pixel_src")[0])
    del no_pixels.PixelData
    cases["no_pixel_data"] = root / "no_pixel_data.dcm"
    no_pixels.save_as(cases["no_pixel_data"], enforce_file_format=True)

    def spacing(k: int, ds: Dataset) -> None:
        if k == 2:
            ds.PixelSpacing = [0.9, 0.8]

    cases["varying_spacing"] = _edited_series(small, root / "varying_spacing", spacing)

    def no_position(k: int, ds: Dataset) -> None:
        if k == 1:
            del ds.ImagePositionPatient

    cases["no_position"] = _edited_series(small, root / "no_position", no_position)
    cases["non_ct_modality"] = _edited_series(small, root / "mr", lambda k, ds: setattr(ds, "Modality", "MR"))

    rgb = _base_dataset(generate_uid(), generate_uid(), generate_uid(), 5, "screenshot", "MEDGAN-FIX-1")
    rgb.SOPClassUID = SecondaryCaptureImageStorage
    rgb.SOPInstanceUID = generate_uid()
    rgb.Modality = "OT"
    rgb.Rows = rgb.Columns = 8
    rgb.SamplesPerPixel, rgb.PhotometricInterpretation, rgb.PlanarConfiguration = 3, "RGB", 0
    rgb.BitsAllocated = rgb.BitsStored = 8
    rgb.HighBit, rgb.PixelRepresentation = 7, 0
    rgb.ImagePositionPatient, rgb.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    rgb.PixelSpacing = [1, 1]
    rgb.PixelData = np.zeros((8, 8, 3), np.uint8).tobytes()
    rgb.file_meta = FileMetaDataset()
    rgb.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    rgb.file_meta.MediaStorageSOPInstanceUID = rgb.SOPInstanceUID
    rgb.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    cases["rgb_secondary_capture"] = root / "rgb_sc.dcm"
    rgb.save_as(cases["rgb_secondary_capture"], enforce_file_format=True)

    cases["dicom_named_nii"] = root / "ct.nii"
    cases["dicom_named_nii"].write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    cases["symlink_loop"] = root / "loop.nii.gz"
    os.symlink(cases["symlink_loop"].name, cases["symlink_loop"])


def _add_odd_volume_files(root: Path, cases: dict[str, Path]) -> None:
    """8×8×4 volumes (ITK writes them; nibabel where ITK cannot: 0 slices, 4D)."""
    import nibabel as nib
    import SimpleITK as sitk

    def write(name: str, zyx: np.ndarray, vector: bool = False) -> Path:
        cases[name.split(".")[0].replace("-", "_")] = path = root / name
        sitk.WriteImage(sitk.GetImageFromArray(zyx, isVector=vector), str(path), useCompression=not name.endswith(".nii"))
        return path

    def values(*marks: tuple[tuple[int, int, int], float]) -> np.ndarray:
        zyx = np.full((4, 8, 8), 30.0, dtype=np.float32)
        for index, value in marks:
            zyx[index] = value
        return zyx

    write("nan_nifti.nii.gz", values(((0, 0, 0), np.nan), ((3, 7, 7), np.nan)))
    write("inf_nifti.nii", values(((1, 2, 3), np.inf)))
    write("nan_nrrd.nrrd", values(((2, 2, 2), np.nan)))
    write("inf_mha.mha", values(((0, 5, 1), -np.inf)))
    write("all_nan_nifti.nii.gz", np.full((4, 8, 8), np.nan, dtype=np.float32))
    ramp = np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8) * 7
    for suffix, name in ((".nii.gz", "cut_nii_gz"), (".nii", "cut_nii"), (".nrrd", "cut_nrrd"), (".mha", "cut_mha")):
        whole = root / f"whole_{name}{suffix}"
        sitk.WriteImage(sitk.GetImageFromArray(ramp), str(whole), useCompression=suffix != ".nii")
        cases[name] = root / f"{name}{suffix}"
        cases[name].write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
        whole.unlink()

    cases["zero_slice_nifti"] = root / "zero_slices.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 0), np.int16), np.eye(4)), cases["zero_slice_nifti"])
    cases["zero_slice_nrrd"] = root / "zero_slices.nrrd"
    cases["zero_slice_nrrd"].write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 8 8 0\nencoding: raw\n\n")
    cases["zero_byte_nifti"] = root / "empty.nii.gz"
    cases["zero_byte_nifti"].write_bytes(b"")
    cases["garbage_nifti"] = root / "garbage.nii"
    cases["garbage_nifti"].write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    cases["text_named_nii_gz"] = root / "notes.nii.gz"
    cases["text_named_nii_gz"].write_text("a scan, honestly\n")
    cases["nifti_4d"] = root / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 3), np.int16), np.eye(4)), cases["nifti_4d"])
    write("rgb_nrrd.nrrd", np.zeros((4, 8, 8, 3), np.uint8), vector=True)

    voxels = ramp.tobytes()  # 8*8*4 int16
    header = "NRRD0004\ntype: {type}\ndimension: 3\nsizes: {sizes}\nencoding: raw\nendian: little\n{extra}\n"
    for name, fields, data in (
        ("nrrd_lying_sizes", {"type": "short", "sizes": "8 8 40", "extra": ""}, voxels),
        ("nrrd_lying_type", {"type": "double", "sizes": "8 8 4", "extra": ""}, voxels),
        ("nhdr_without_data", {"type": "short", "sizes": "8 8 4", "extra": "data file: gone.raw\n"}, b""),
    ):
        cases[name] = root / (f"{name}.nhdr" if name.startswith("nhdr") else f"{name}.nrrd")
        cases[name].write_bytes(header.format(**fields).encode() + data)


def make_segmentation(volume_or_array: object, folder: str | Path) -> Path:
    """A real DICOM SEG (highdicom) of a threshold mask over a fixture series; returns the SEG's folder."""
    import highdicom as hd

    folder = Path(folder)
    source = [pydicom.dcmread(f) for f in write_dicom_series(volume_or_array, folder / "source")]
    mask = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) > 0 for ds in source])
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="dense", segmented_property_category=hd.sr.CodedConcept("T-D0050", "SRT", "Tissue"),
        segmented_property_type=hd.sr.CodedConcept("T-D0050", "SRT", "Tissue"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=source, pixel_array=mask.astype(np.uint8), segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=generate_uid(), series_number=9,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="medgan-fixture",
        manufacturer_model_name="fixture", software_versions="0", device_serial_number="0",
    )
    out = folder / "seg"
    out.mkdir()
    seg.save_as(out / "seg.dcm")
    return out
