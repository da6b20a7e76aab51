"""Derived CT series writer: signed int16 HU slices that PACS and 3D Slicer load as one volume.

No library writes this for us (MONAI's DICOM saving forces uint8/uint16 and drops the header; highdicom
has no single-frame CT writer), so each slice is built with pydicom from the matching source header,
following the DICOM standard (``docs/formats.md``, "Derived DICOM CT series"): new Series/SOP UIDs; study, frame of reference and patient kept; ``ImageType``
DERIVED\\SECONDARY\\AXIAL with source references; geometry from the volume's own affine; Explicit VR Little
Endian even when the source was compressed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import DSfloat
from tqdm import tqdm

from medgan.io.geometry import dicom_plane_attributes, slice_normal

#: Header attributes of a source slice that would be wrong for the derived pixels or are not part of the
#: single-frame CT IOD (they come with enhanced multi-frame sources).
_DROPPED = (
    "PixelData", "FloatPixelData", "DoubleFloatPixelData", "LargestImagePixelValue", "SmallestImagePixelValue",
    "LargestPixelValueInSeries", "SmallestPixelValueInSeries", "PixelPaddingValue", "PixelPaddingRangeLimit",
    "ModalityLUTSequence", "VOILUTSequence", "IconImageSequence", "NumberOfFrames", "FrameIncrementPointer",
    "PlanarConfiguration", "SourceImageSequence", "DerivationCodeSequence", "ReferencedSeriesSequence",
    "SpacingBetweenSlices", "DataSetTrailingPadding", "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence", "PixelPresentation", "VolumetricProperties",
    "VolumeBasedCalculationTechnique", "DimensionIndexSequence", "DimensionOrganizationSequence",
    "DimensionOrganizationType", "ConcatenationUID", "InConcatenationNumber", "ConcatenationFrameOffsetNumber",
    "InConcatenationTotalNumber", "RepresentativeFrameNumber", "ContentQualification", "AcquisitionContextSequence",
    "PresentationLUTShape", "ReferencedInstanceSequence",
    "RescaleType", "SliceLocation", "ImageType",
)
_DEFAULT_WINDOW = (40.0, 400.0)  # soft tissue; used when the source has none
#: Lossy transfer syntaxes → LossyImageCompressionMethod. Once lossy, always flagged lossy (PS3.3 C.7.6.1.1.5),
#: even though medgan itself writes uncompressed.
_LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.93": "ISO_15444_1",
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",
}


def _ds(value: float) -> DSfloat:
    """A DS value within the 16-character limit, with as many significant digits as fit.

    (pydicom's ``auto_format`` can round 9.999999999999996 to the 17-character "10.00000000000000".)
    """
    value = float(value)
    for digits in range(15, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return DSfloat(text)
    raise ValueError(f"{value} cannot be written as a DICOM DS")


def _medgan_version() -> str:
    try:
        from medgan import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "unknown"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _new_study_base(now: dt.datetime) -> Dataset:
    """Patient / study / frame-of-reference / equipment of a new study (input without DICOM headers)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyInstanceUID = generate_uid()
    # PACS and DICOMDIR builders reject an empty PatientID; derive a stable, obviously synthetic one
    ds.PatientName = "Anonymous^Patient"
    ds.PatientID = "MEDGAN-" + hashlib.sha1(ds.StudyInstanceUID.encode()).hexdigest()[:10].upper()
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.StudyDescription = "medgan"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "medgan"
    ds.KVP = ""
    ds.AcquisitionNumber = 1
    return ds


def _from_source(header: Dataset) -> Dataset:
    """A copy of a source header without private tags, overlays and pixel-dependent attributes."""
    ds = Dataset()
    ds.update(header)  # shallow: we only replace or delete top-level elements below
    ds.remove_private_tags()
    for tag in [t for t in ds.keys() if 0x5000 <= t.group <= 0x60FF or t.group == 0x0002]:
        del ds[tag]  # curves and overlays describe the source pixels; group 2 belongs to the file meta
    for keyword in _DROPPED:
        if keyword in ds:
            delattr(ds, keyword)
    syntax = str(getattr(header, "file_meta", {}).get("TransferSyntaxUID", ""))
    if syntax in _LOSSY_SYNTAXES and ds.get("LossyImageCompression") != "01":
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = _LOSSY_SYNTAXES[syntax]
    return ds


def _nearest_sources(headers: Sequence[Dataset], positions: np.ndarray) -> list[int]:
    """Index of the source slice nearest (along the source normal) to each output slice position."""
    normal = slice_normal([float(v) for v in headers[0].ImageOrientationPatient])
    source = np.array([np.asarray(h.ImagePositionPatient, dtype=np.float64) @ normal for h in headers])
    return [int(np.argmin(np.abs(source - p @ normal))) for p in positions]


def write_ct_series(
    hu: np.ndarray,
    affine_lps: np.ndarray,
    folder: Path,
    *,
    headers: Sequence[Dataset] | None = None,
    frame_numbers: Sequence[int | None] | None = None,
    description: str = "",
) -> list[Path]:
    """Write a CT series, one file per slice, into ``folder`` (created; must not hold other files).

    Args:
        hu: ``(X, Y, Z)`` int16 HU (X = column, Y = row).
        affine_lps: 4×4 voxel→LPS-mm affine of ``hu``; it alone decides the written geometry.
        headers: source slice headers (z order). When given, the series is a derived series of their
            study; output slice ``k`` takes its patient/study/acquisition attributes from, and references,
            the source slice nearest to it along the source normal. ``None`` starts a new study.
        frame_numbers: 1-based frame of each header in its multi-frame source (``ReferencedFrameNumber``).
        description: SeriesDescription and part of DerivationDescription (e.g. the model name).

    Returns:
        The written files, in InstanceNumber (= spatial) order.
    """
    if hu.dtype != np.int16 or hu.ndim != 3:
        raise ValueError(f"hu must be (X, Y, Z) int16, got {hu.dtype} {hu.shape}")
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    orientation, pixel_spacing, slice_spacing, step = dicom_plane_attributes(affine_lps)
    normal = slice_normal(orientation)
    n_slices = hu.shape[2]
    positions = affine_lps[:3, 3] + np.arange(n_slices)[:, None] * step
    series_uid = generate_uid()
    version = _medgan_version()
    text = description.strip() or "medgan output"

    equipment = Dataset()
    equipment.Manufacturer = "medgan"
    equipment.SoftwareVersions = version
    equipment.ContributionDateTime = now.strftime("%Y%m%d%H%M%S")
    equipment.ContributionDescription = text[:1024]
    equipment.PurposeOfReferenceCodeSequence = DicomSequence([_code("109102", "DCM", "Processing Equipment")])

    if headers:
        nearest = _nearest_sources(headers, positions)
        source_series = str(headers[0].SeriesInstanceUID)
        acquisition = headers[0].get("AcquisitionNumber", 1)
        series_number = int(headers[0].get("SeriesNumber", 0) or 0) + 1000
        referenced = Dataset()
        referenced.SeriesInstanceUID = source_series
        seen: dict[str, Dataset] = {}
        for i in sorted(set(nearest)):
            uid = str(headers[i].SOPInstanceUID)
            if uid not in seen:
                seen[uid] = _reference(headers[i], None)
        referenced.ReferencedInstanceSequence = DicomSequence(list(seen.values()))
        study_base = None
    else:
        study_base = _new_study_base(now)
        acquisition, series_number, nearest = 1, 1, []

    written = []
    for k in tqdm(range(n_slices), desc="writing DICOM", unit="slice", disable=None, leave=False):
        if headers:
            ds = _from_source(headers[nearest[k]])
            frame = None if frame_numbers is None else frame_numbers[nearest[k]]
            ds.SourceImageSequence = DicomSequence([_reference(headers[nearest[k]], frame)])
            ds.ReferencedSeriesSequence = DicomSequence([referenced])
            for keyword in ("PatientPosition", "Laterality", "KVP"):
                if keyword not in ds:  # type 2 of the CT IOD; enhanced sources keep KVP in functional groups
                    setattr(ds, keyword, "")
        else:
            ds = Dataset()
            ds.update(study_base)
            ds.PatientPosition = ""
            ds.Laterality = ""
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = text[:64]
        ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = date
        ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = time
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.DerivationDescription = f"{text} (medgan {version})"[:1024]
        ds.ContributingEquipmentSequence = DicomSequence(
            list(ds.get("ContributingEquipmentSequence", [])) + [equipment]
        )
        ds.AcquisitionNumber = acquisition
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(v) for v in positions[k]]
        ds.ImageOrientationPatient = [_ds(v) for v in orientation]
        ds.PixelSpacing = [_ds(v) for v in pixel_spacing]  # [row, column] = [dy, dx]
        ds.SliceThickness = _ds(slice_spacing)
        ds.SliceLocation = _ds(float(positions[k] @ normal))
        _set_pixels(ds, hu[:, :, k])
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        out = folder / f"{k + 1:05d}.dcm"
        ds.save_as(out, enforce_file_format=True)
        written.append(out)
    return written


def _reference(header: Dataset, frame: int | None) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = header.SOPClassUID
    item.ReferencedSOPInstanceUID = header.SOPInstanceUID
    if frame is not None:
        item.ReferencedFrameNumber = frame
    return item


def _set_pixels(ds: Dataset, plane_xy: np.ndarray) -> None:
    """Signed 16-bit pixels, identity rescale: stored value == HU (``docs/formats.md``)."""
    rows = np.ascontiguousarray(plane_xy.T.astype("<i2"))  # (Y, X) = (rows, columns)
    ds.Rows, ds.Columns = rows.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        ds.WindowCenter, ds.WindowWidth = _ds(_DEFAULT_WINDOW[0]), _ds(_DEFAULT_WINDOW[1])
    ds.PixelData = rows.tobytes()
    ds["PixelData"].VR = "OW"
