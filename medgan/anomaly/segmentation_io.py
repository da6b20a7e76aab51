"""Anomaly masks out to 3D Slicer and PACS: ``.seg.nrrd`` (slicerio) and DICOM SEG (highdicom).

Both writers take the mask on the grid of the scan it was computed from: ``(X, Y, Z)`` (or ``(1, X, Y, Z)``)
voxels indexed like :func:`medgan.io.read_volume` (X = DICOM column, Y = row, Z = slice in the volume's z
order) and that volume's RAS affine. Each writes to a temporary sibling, re-reads what it wrote, then
renames it into place (docs/formats.md and docs/slicer.md list what Slicer and PACS require of segmentations).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medgan import __version__
from medgan.errors import InputError
from medgan.io.atomic import check_output, staged_output
from medgan.io.geometry import ras_to_lps
from medgan.io.headers import DicomHeaders

#: Slicer's colour for the single anomaly segment (RGB in [0, 1]): a saturated orange-red, visible over grey CT.
ANOMALY_COLOR = (1.0, 0.35, 0.1)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, fallback: str = "case") -> str:
    """A file-name-safe version of ``text`` (e.g. a case name taken from a DICOM tag): letters, digits, ``._-``."""
    cleaned = _UNSAFE.sub("_", str(text)).strip("._")
    return cleaned[:120] or fallback


def _lo(text: str) -> str:
    """A DICOM LO value: at most 64 characters, no backslash (the value separator)."""
    return str(text).replace("\\", "/")[:64]


def _mask_array(mask: torch.Tensor | np.ndarray) -> np.ndarray:
    data = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise InputError(f"mask must be (X, Y, Z) or (1, X, Y, Z), got shape {tuple(data.shape)}")
    return data.astype(bool)


def _affine_of(mask: torch.Tensor | np.ndarray, affine_ras: np.ndarray | torch.Tensor | None) -> np.ndarray:
    if affine_ras is None:
        affine_ras = getattr(mask, "affine", None)
    if affine_ras is None:
        raise InputError("the mask has no affine: pass affine_ras (4x4 voxel -> RAS mm)")
    affine = np.asarray(torch.as_tensor(affine_ras).detach().cpu(), dtype=np.float64)
    if affine.shape != (4, 4):
        raise InputError(f"affine_ras must be 4x4, got {affine.shape}")
    return affine


def write_seg_nrrd(
    mask: torch.Tensor | np.ndarray,
    path: str | Path,
    affine_ras: np.ndarray | torch.Tensor | None = None,
    *,
    name: str = "anomaly",
    color: Sequence[float] = ANOMALY_COLOR,
    overwrite: bool = False,
) -> Path:
    """Write a binary mask as a Slicer segmentation (``.seg.nrrd``, LPS, one segment).

    Args:
        mask: ``(X, Y, Z)`` or ``(1, X, Y, Z)`` boolean/0-1 voxels on the scan's grid; a ``MetaTensor`` brings
            its own affine.
        path: output file, conventionally ``*.seg.nrrd``.
        affine_ras: 4×4 voxel → RAS mm affine (default: ``mask.affine``); stored as LPS ``space directions``.
        name: segment ``Name`` (and ``ID``).
        color: segment ``Color``, RGB in [0, 1].
        overwrite: replace an existing file.

    Returns:
        ``path`` once the file has been re-read with :func:`slicerio.read_segmentation` and matches.

    Raises:
        OutputExistsError: ``path`` exists without ``overwrite``. InputError: bad mask shape or affine.
    """
    import slicerio

    path = Path(path)
    voxels = _mask_array(mask)
    affine_lps = ras_to_lps(_affine_of(mask, affine_ras))
    check_output(path, overwrite)
    segmentation = slicerio.create_segmentation(voxels.shape, affine_lps)
    slicerio.add_segment(segmentation, voxels, {"id": safe_name(name), "name": name,
                                                "color": [float(c) for c in color]})
    with staged_output(path) as staged:
        # index_order "F": voxels are (i, j, k) = (X, Y, Z) as NRRD's fastest-first axes
        slicerio.write_segmentation(str(staged), segmentation, index_order="F")
        back = slicerio.read_segmentation(str(staged))
        if not (np.array_equal(back["voxels"] > 0, voxels)
                and np.allclose(back["ijkToLPS"], affine_lps, atol=1e-4, rtol=0)):
            raise RuntimeError(f"'{path}' read back with different voxels or geometry; it was not written")
    return path


def write_dicom_seg(
    mask: torch.Tensor | np.ndarray,
    headers: DicomHeaders,
    path: str | Path,
    *,
    algorithm: str = "medgan anomaly",
    algorithm_version: str = __version__,
    label: str = "anomaly",
    series_description: str = "medgan anomaly mask",
    series_number: int = 901,
    color: Sequence[float] = ANOMALY_COLOR,
    overwrite: bool = False,
) -> Path:
    """Write a binary mask as a DICOM Segmentation of the source series it was computed on.

    BINARY, uncompressed (Explicit VR Little Endian), one AUTOMATIC segment with an
    ``AlgorithmIdentificationSequence``; source images are sorted with :func:`highdicom.spatial.sort_datasets`
    and each frame gets a ``DerivationImageSequence`` item pointing at its source slice (highdicom does this
    for single-frame sources). The segment is coded as SCT "Morphologically Abnormal Structure" / "Lesion".

    Args:
        mask: ``(X, Y, Z)`` or ``(1, X, Y, Z)`` on the grid of the series (slice ``k`` ↔ ``headers[k]``).
        headers: ``volume.meta["dicom_headers"]`` of the source scan (pixel data not needed).
        path: output ``.dcm`` file.
        algorithm, algorithm_version: AlgorithmName / AlgorithmVersion (cut to the 64 characters of VR LO).
        label: SegmentLabel.
        series_description, series_number: of the new SEG series.
        color: RGB in [0, 1], stored as the segment's RecommendedDisplayCIELabValue.
        overwrite: replace an existing file.

    Raises:
        InputError: the headers do not match the mask, or come from multi-frame (enhanced) objects.
        OutputExistsError: ``path`` exists without ``overwrite``.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes
    from pydicom.uid import SegmentationStorage

    path = Path(path)
    voxels = _mask_array(mask)
    if not isinstance(headers, DicomHeaders) or len(headers) != voxels.shape[2]:
        count = len(headers) if isinstance(headers, DicomHeaders) else type(headers).__name__
        raise InputError(f"DICOM SEG needs one source header per mask slice: {voxels.shape[2]} slices, got {count}")
    if headers.frame_numbers is not None and any(f is not None for f in headers.frame_numbers):
        raise InputError("DICOM SEG output supports single-frame source series only (this one is multi-frame)")
    first = headers[0]
    if (int(first.Columns), int(first.Rows)) != voxels.shape[:2]:
        raise InputError(f"mask is {voxels.shape[0]}x{voxels.shape[1]} (columns x rows) but the source "
                         f"(0028,0011) Columns x (0028,0010) Rows is {first.Columns}x{first.Rows}")
    check_output(path, overwrite)

    # (X, Y, Z) -> one (Rows, Columns) frame per source slice, in the order sort_datasets gives
    frame_of = {str(ds.SOPInstanceUID): voxels[:, :, k].T for k, ds in enumerate(headers)}
    sources = hd.spatial.sort_datasets(list(headers))
    frames = np.stack([frame_of[str(ds.SOPInstanceUID)] for ds in sources]).astype(np.uint8)
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=_lo(algorithm), family=codes.cid7162.ArtificialIntelligence, version=_lo(algorithm_version)),
        display_color=hd.color.CIELabColor.from_rgb(*(255.0 * float(c) for c in color)),
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="medgan",
        manufacturer_model_name="medgan-anomaly",
        software_versions=str(__version__),
        device_serial_number="0",
        series_description=_lo(series_description),
        content_creator_name="medgan^",  # a single-component PN needs the caret
        # every slice gets a frame: readers (dcmqi, Slicer) then rebuild the full grid of the source series,
        # not just the extent of the marked slices, and an all-empty mask still has frames
        omit_empty_frames=False,
    )
    with staged_output(path) as staged:
        seg.save_as(staged, enforce_file_format=True)
        back = pydicom.dcmread(staged)
        marked = int(np.count_nonzero(back.pixel_array)) if "PixelData" in back else -1
        if back.SOPClassUID != SegmentationStorage or marked != int(frames.sum()):
            raise RuntimeError(f"'{path}' did not read back as the DICOM SEG written; it was not written")
    return path
