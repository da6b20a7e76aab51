"""Read a CT volume from DICOM: a series folder, a single file, or an enhanced multi-frame object.

Geometry is derived here with pydicom (not left to a toolkit's heuristics): slices are sorted by their
position along the plane normal (row × column direction of ImageOrientationPatient), and the slice step
is the measured vector between the first and last positions, so gantry tilt and reversed stacks keep
their true world coordinates. Pixel data are decoded once, after the series has been validated, through
pydicom's pixel-data plugins (JPEG 2000 / JPEG-LS / JPEG / RLE).

Everything the user could have got wrong raises :class:`medgan.errors.InputError` naming the file, the
DICOM tag and the offending value.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from tqdm import tqdm

from medgan.errors import InputError, MissingFileError
from medgan.io.geometry import dicom_plane_affine, slice_normal, zyx_to_xyz
from medgan.io.headers import DicomHeaders

#: Objects that carry no CT image; named in the error when a user points medgan at them.
NON_IMAGE_MODALITIES = {
    "SEG": "segmentation (SEG)",
    "RTSTRUCT": "RT structure set (RTSTRUCT)",
    "RTPLAN": "RT plan (RTPLAN)",
    "RTDOSE": "RT dose (RTDOSE)",
    "SR": "structured report (SR)",
    "KO": "key object selection (KO)",
    "PR": "presentation state (PR)",
    "REG": "registration (REG)",
    "DOC": "encapsulated document (DOC)",
}
#: Modality values of an image medgan reads; empty is allowed (old or stripped files that still have
#: a CT SOP class and rescale to HU).
CT_MODALITIES = ("CT", "")
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
#: Relative tolerance for "same orientation" and "same pixel spacing" between slices.
_ORIENTATION_TOL = 1e-4
_SPACING_TOL = 1e-3
#: Values larger than this (pixel data) are read from disk only when used: in a folder of several series
#: only the chosen one's pixels are loaded.
_DEFER_BYTES = 64 * 1024


@dataclass
class DicomVolume:
    """What :func:`read_dicom` returns.

    Attributes:
        array: ``(X, Y, Z)`` float32 HU (X = column, Y = row, Z = slice in ascending normal position).
        affine_lps: 4×4 float64 voxel index → LPS mm.
        headers: per-slice source headers without PixelData, in z order.
    """

    array: np.ndarray
    affine_lps: np.ndarray
    headers: DicomHeaders


@dataclass
class _Frame:
    """One 2D image: a single-frame file or one frame of a multi-frame object."""

    ds: Dataset
    path: Path
    frame: int | None  # 0-based frame index in a multi-frame object, else None
    position: np.ndarray
    orientation: np.ndarray
    pixel_spacing: tuple[float, float]
    slope: float
    intercept: float

    @property
    def label(self) -> str:
        return str(self.path) if self.frame is None else f"{self.path} frame {self.frame + 1}"


def read_dicom(path: str | Path, series_uid: str | None = None) -> DicomVolume:
    """Read one DICOM image series (folder), single file or enhanced multi-frame file.

    Args:
        path: a folder (searched recursively) or a DICOM file.
        series_uid: SeriesInstanceUID to pick when the folder holds several series.

    Returns:
        A :class:`DicomVolume` in HU with its LPS affine and source headers.

    Raises:
        MissingFileError: ``path`` does not exist.
        InputError: no DICOM image, several series without ``series_uid``, non-image objects only, a
            non-CT image (MR, PT, OT ...),
            unreadable/truncated files, missing/duplicate slice positions, varying orientation or grid.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"input '{path}' does not exist")
    datasets, non_images = _scan(path)
    if not datasets:
        if non_images:
            kinds = sorted({kind for _, kind in non_images})
            raise InputError(
                f"'{path}' holds no CT image, only {', '.join(kinds)} object(s) (e.g. '{non_images[0][0]}'); "
                "medgan reads image series (CT), not SEG/RTSTRUCT/SR"
            )
        raise InputError(f"'{path}' holds no DICOM file (nothing with a DICOM preamble was found)")
    series = _drop_localizers(_pick_series(path, datasets, series_uid))
    _check_modality(series)
    frames = _frames_of(series)
    frames = _sort_and_check(frames)
    return _assemble(frames)


def _scan(path: Path) -> tuple[list[tuple[Path, Dataset]], list[tuple[Path, str]]]:
    """Read every DICOM file under ``path`` (pixel bytes read, not decoded); split image / non-image."""
    if path.is_dir():
        files = sorted(  # hidden entries (.DS_Store, a writer's .medgan-tmp folder) are never slices
            p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    else:
        files = [path]
    images: list[tuple[Path, Dataset]] = []
    non_images: list[tuple[Path, str]] = []
    progress = tqdm(files, desc="reading DICOM", unit="file", leave=False, disable=None if len(files) > 50 else True)
    for file in progress:
        ds = _read_file(file, required=path.is_file() or file.suffix.lower() == ".dcm")
        if ds is None:
            continue  # a README or thumbnail beside the slices
        sop_class = str(ds.get("SOPClassUID", ""))
        modality = str(ds.get("Modality", "")).upper()
        if sop_class == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
            continue
        if modality in NON_IMAGE_MODALITIES:
            non_images.append((file, NON_IMAGE_MODALITIES[modality]))
        elif "PixelData" not in ds:
            name = getattr(ds.SOPClassUID, "name", sop_class) if "SOPClassUID" in ds else ""
            if not name or "Image Storage" in name:
                # pydicom stops quietly at the end of a cut file: an image without pixels is a truncated one
                raise InputError(f"'{file}' is truncated or incomplete: it has no PixelData (7FE0,0010)")
            non_images.append((file, f"non-image object ({name})"))
        else:
            images.append((file, ds))
    return images, non_images


def _read_file(file: Path, required: bool) -> Dataset | None:
    """Read one file; ``None`` for a non-DICOM file that is not ``required`` to be DICOM."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on odd-but-readable values; geometry checks follow
        try:
            return pydicom.dcmread(file, defer_size=_DEFER_BYTES)
        except InvalidDicomError:
            pass
        except Exception as err:  # noqa: BLE001 - pydicom raises many types on broken files
            raise InputError(f"'{file}' is unreadable or truncated: {type(err).__name__}: {err}") from None
        try:  # old files without the 128-byte preamble and file meta are still DICOM
            ds = pydicom.dcmread(file, force=True)
            if "SOPClassUID" in ds and ("Modality" in ds or "PixelData" in ds):
                return ds
        except Exception:  # noqa: BLE001 - forced parsing of a non-DICOM file fails in arbitrary ways
            pass
    if required:
        raise InputError(f"'{file}' is not a DICOM file or is truncated (no DICM preamble)")
    return None


def _pick_series(path: Path, datasets: list[tuple[Path, Dataset]], series_uid: str | None
                 ) -> list[tuple[Path, Dataset]]:
    groups: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for file, ds in datasets:
        groups[str(ds.get("SeriesInstanceUID", ""))].append((file, ds))
    if series_uid is not None:
        if series_uid not in groups:
            raise InputError(
                f"series_uid '{series_uid}' is not in '{path}'; available: {_describe_series(groups)}"
            )
        return groups[series_uid]
    if len(groups) > 1:
        raise InputError(
            f"'{path}' holds {len(groups)} image series; pick one with --series-uid (series_uid=): "
            f"{_describe_series(groups)}"
        )
    return next(iter(groups.values()))


def _check_modality(series: list[tuple[Path, Dataset]]) -> None:
    """A non-CT image (MR, PET, a photo or screenshot as OT/SC) has no HU; a CT model would make up values."""
    for file, ds in series:
        modality = str(ds.get("Modality", "")).strip().upper()
        if modality not in CT_MODALITIES:
            raise InputError(
                f"'{file}' is not a CT image: Modality (0008,0060) is '{modality}'; medgan reads CT series (HU)"
            )


def _drop_localizers(series: list[tuple[Path, Dataset]]) -> list[tuple[Path, Dataset]]:
    """Scanners often file the scout (ImageType ...\\LOCALIZER) in the axial series; it is not a slice."""
    def is_localizer(ds: Dataset) -> bool:
        value = ds.get("ImageType") or []
        return "LOCALIZER" in [str(v).upper() for v in ([value] if isinstance(value, str) else value)]

    slices = [(f, ds) for f, ds in series if not is_localizer(ds)]
    return slices or series  # a localizer-only series is read as it is


def _describe_series(groups: dict[str, list[tuple[Path, Dataset]]]) -> str:
    parts = []
    for uid, members in groups.items():
        ds = members[0][1]
        desc = str(ds.get("SeriesDescription", "")).strip()
        parts.append(f"{uid} ({ds.get('Modality', '?')}, '{desc}', {len(members)} file(s))")
    return "; ".join(parts)


def _require(ds: Dataset, keyword: str, tag: str, where: str) -> object:
    value = ds.get(keyword)
    if value is None or value == "":
        raise InputError(f"'{where}' lacks {keyword} {tag}, needed for the volume's geometry")
    return value


def _frames_of(series: list[tuple[Path, Dataset]]) -> list[_Frame]:
    """Every 2D frame of the series: single-frame files, and the frames of enhanced multi-frame files (one
    or several, e.g. a concatenation); they are sorted by position later, whatever file they come from."""
    frames = []
    for file, ds in series:
        if "PerFrameFunctionalGroupsSequence" in ds:
            frames.extend(_enhanced_frames(file, ds))
            continue
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(
                f"'{file}' has NumberOfFrames {ds.NumberOfFrames} but no PerFrameFunctionalGroupsSequence "
                "(5200,9230); only enhanced multi-frame images with per-frame geometry are supported"
            )
        frames.append(_frame(ds, file, None, ds, ds, ds, ds, str(file)))
    return frames


def _frame(ds: Dataset, file: Path, index: int | None, position: Dataset, orientation: Dataset,
           measures: Dataset, rescale: Dataset, where: str) -> _Frame:
    """One frame's geometry and rescale, read from the items that hold them: the dataset itself for a
    classic image, the functional-group macros of an enhanced one (rescale falling back to the dataset)."""
    return _Frame(
        ds=ds, path=file, frame=index,
        position=np.asarray(_require(position, "ImagePositionPatient", "(0020,0032)", where), dtype=np.float64),
        orientation=np.asarray(
            _require(orientation, "ImageOrientationPatient", "(0020,0037)", where), dtype=np.float64),
        pixel_spacing=tuple(float(v) for v in _require(measures, "PixelSpacing", "(0028,0030)", where)),
        slope=float(rescale.get("RescaleSlope", ds.get("RescaleSlope", 1.0)) or 1.0),
        intercept=float(rescale.get("RescaleIntercept", ds.get("RescaleIntercept", 0.0)) or 0.0),
    )


def _group_item(ds: Dataset, per_frame: Dataset, sequence: str) -> Dataset | None:
    """A functional-group macro for one frame: the per-frame item wins over the shared one."""
    for source in (per_frame, ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]):
        if sequence in source and len(source[sequence].value):
            return source[sequence].value[0]
    return None


def _enhanced_frames(file: Path, ds: Dataset) -> list[_Frame]:
    per_frame = ds.PerFrameFunctionalGroupsSequence
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if len(per_frame) != n_frames:
        raise InputError(
            f"'{file}' has NumberOfFrames (0028,0008) {n_frames} but {len(per_frame)} items in "
            "PerFrameFunctionalGroupsSequence (5200,9230)"
        )
    frames = []
    for index, item in enumerate(per_frame):
        where = f"{file} frame {index + 1}"
        position = _group_item(ds, item, "PlanePositionSequence")
        orientation = _group_item(ds, item, "PlaneOrientationSequence")
        measures = _group_item(ds, item, "PixelMeasuresSequence")
        rescale = _group_item(ds, item, "PixelValueTransformationSequence") or Dataset()
        if position is None or orientation is None or measures is None:
            raise InputError(
                f"'{where}' lacks PlanePositionSequence (0020,9113), PlaneOrientationSequence (0020,9116) or "
                "PixelMeasuresSequence (0028,9110)"
            )
        frames.append(_frame(ds, file, index, position, orientation, measures, rescale, where))
    return frames


def _sort_and_check(frames: list[_Frame]) -> list[_Frame]:
    """Check one grid and one orientation, sort along the normal, reject duplicate/missing positions."""
    first = frames[0]
    for fr in frames[1:]:
        if not np.allclose(fr.orientation, first.orientation, atol=_ORIENTATION_TOL):
            raise InputError(
                f"ImageOrientationPatient (0020,0037) varies within the series: {first.orientation.round(5).tolist()} "
                f"in '{first.label}' but {fr.orientation.round(5).tolist()} in '{fr.label}'"
            )
        if not np.allclose(fr.pixel_spacing, first.pixel_spacing, rtol=_SPACING_TOL):
            raise InputError(
                f"PixelSpacing (0028,0030) varies within the series: {list(first.pixel_spacing)} in "
                f"'{first.label}' but {list(fr.pixel_spacing)} in '{fr.label}'"
            )
        for keyword, tag in (("Rows", "(0028,0010)"), ("Columns", "(0028,0011)")):
            if fr.ds.get(keyword) != first.ds.get(keyword):
                raise InputError(
                    f"{keyword} {tag} varies within the series: {first.ds.get(keyword)} in '{first.label}' "
                    f"but {fr.ds.get(keyword)} in '{fr.label}'"
                )
    normal = slice_normal(first.orientation)
    frames = sorted(frames, key=lambda fr: float(fr.position @ normal))
    if len(frames) < 2:
        return frames
    along = np.array([fr.position @ normal for fr in frames])
    gaps = np.diff(along)
    for i, gap in enumerate(gaps):
        if gap < 1e-3:
            raise InputError(
                f"duplicate slice position {along[i]:.3f} mm (ImagePositionPatient (0020,0032)) in "
                f"'{frames[i].label}' and '{frames[i + 1].label}'"
            )
    # the smallest step is the series' own (a median is fooled when few slices remain around a gap)
    typical = float(gaps.min())
    for i, gap in enumerate(gaps):
        if gap > 1.5 * typical:
            missing = round(gap / typical) - 1
            raise InputError(
                f"missing slice(s): gap of {gap:.3f} mm between '{frames[i].label}' and '{frames[i + 1].label}' "
                f"where the series steps {typical:.3f} mm (about {missing} slice(s) absent)"
            )
        if abs(gap - typical) > 0.1 * typical:
            raise InputError(
                f"uneven slice spacing: {gap:.3f} mm between '{frames[i].label}' and '{frames[i + 1].label}', "
                f"{typical:.3f} mm elsewhere (ImagePositionPatient (0020,0032))"
            )
    return frames


def _preferred_plugins() -> dict[str, str]:
    """Decoder per transfer syntax where pydicom's default order picks a slower one: for JPEG-LS it tries
    pylibjpeg-libjpeg before pyjpegls (CharLS), which decodes CT slices about 4x faster here."""
    from pydicom.pixels.decoders import JPEGLSLosslessDecoder, JPEGLSNearLosslessDecoder

    return {
        str(decoder.UID): "pyjpegls"
        for decoder in (JPEGLSLosslessDecoder, JPEGLSNearLosslessDecoder)
        if "pyjpegls" in decoder.available_plugins
    }


_PLUGINS = _preferred_plugins()


def _pixel_array(fr: _Frame) -> np.ndarray:
    plugin = _PLUGINS.get(str(fr.ds.file_meta.get("TransferSyntaxUID", "")))
    try:
        if plugin is not None:
            fr.ds.pixel_array_options(decoding_plugin=plugin)
        return fr.ds.pixel_array
    except Exception as err:  # noqa: BLE001 - truncated data and missing plugins raise varied types
        raise InputError(
            f"'{fr.path}' pixel data cannot be decoded, truncated or corrupt? (transfer syntax "
            f"{fr.ds.file_meta.get('TransferSyntaxUID', '?')}): {type(err).__name__}: {err}"
        ) from None


def _decode(frames: list[_Frame]) -> np.ndarray:
    """Decode each file once into ``(Z, rows, cols)`` float32 HU, in ``frames`` order."""
    out: np.ndarray | None = None
    multi_frame: dict[int, np.ndarray] = {}  # a multi-frame object is decoded once for all its frames
    for z, fr in enumerate(frames):
        if fr.frame is None:
            pixels = _pixel_array(fr)
        else:
            if id(fr.ds) not in multi_frame:
                multi_frame[id(fr.ds)] = _pixel_array(fr)
            pixels = multi_frame[id(fr.ds)][fr.frame]
        if pixels.ndim != 2:
            raise InputError(
                f"'{fr.label}' is not a grayscale image (pixel array shape {pixels.shape}, "
                f"PhotometricInterpretation {fr.ds.get('PhotometricInterpretation')})"
            )
        if out is None:
            out = np.empty((len(frames), *pixels.shape), dtype=np.float32)
        if fr.slope == 1.0 and float(fr.intercept).is_integer():
            # integer HU: float32 holds every 16-bit value plus intercept exactly; skip the float64 pass
            out[z] = pixels
            out[z] += fr.intercept
        else:
            out[z] = pixels.astype(np.float64) * fr.slope + fr.intercept
    assert out is not None  # frames is never empty here
    return out


def _frame_header(base: Dataset, fr: _Frame) -> Dataset:
    """A single-frame style header for one frame of a multi-frame object."""
    header = Dataset()
    header.update(base)  # shallow: the elements set below replace shared ones, never mutate them
    header.file_meta = fr.ds.file_meta
    header.ImagePositionPatient = [float(v) for v in fr.position]
    header.ImageOrientationPatient = [float(v) for v in fr.orientation]
    header.PixelSpacing = list(fr.pixel_spacing)
    header.RescaleSlope = fr.slope
    header.RescaleIntercept = fr.intercept
    return header


def _assemble(frames: list[_Frame]) -> DicomVolume:
    pixels = _decode(frames)  # (Z, rows, cols)
    first = frames[0]
    if len(frames) > 1:
        step = (frames[-1].position - first.position) / (len(frames) - 1)
    else:
        thickness = float(first.ds.get("SpacingBetweenSlices", 0) or first.ds.get("SliceThickness", 0) or 1.0)
        step = slice_normal(first.orientation) * thickness
    affine = dicom_plane_affine(first.position, first.orientation, first.pixel_spacing, step)
    bases: dict[int, Dataset] = {}  # per multi-frame object: its top-level header without frames/pixels
    headers = []
    for fr in frames:
        if fr.frame is None:
            if "PixelData" in fr.ds:
                del fr.ds.PixelData  # headers travel with the volume; the pixels are in the array now
            headers.append(fr.ds)
            continue
        if id(fr.ds) not in bases:
            base = bases[id(fr.ds)] = Dataset()
            base.update(fr.ds)
            for keyword in ("PixelData", "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence",
                            "NumberOfFrames"):
                if keyword in base:
                    del base[keyword]
        headers.append(_frame_header(bases[id(fr.ds)], fr))
    frame_numbers = None if not bases else [None if fr.frame is None else fr.frame + 1 for fr in frames]
    return DicomVolume(
        array=zyx_to_xyz(pixels), affine_lps=affine,
        headers=DicomHeaders(headers, frame_numbers),
    )
