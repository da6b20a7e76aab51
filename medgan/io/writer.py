"""``write_volume``: a ``(1, X, Y, Z)`` HU volume → NIfTI / NRRD / MHA file or a DICOM CT series folder.

Every write goes to a temporary sibling, is read back and compared (array exact, geometry to 1e-4 mm)
before it is renamed into place (``docs/formats.md``, "Writing").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from medgan.errors import ConfigError, InputError
from medgan.io.atomic import check_output, staged_output
from medgan.io.dicom_read import read_dicom
from medgan.io.dicom_series import write_ct_series
from medgan.io.formats import FORMATS, format_of_name, suffixes_of
from medgan.io.geometry import grid_from_affine, ras_to_lps
from medgan.io.headers import DicomHeaders
from medgan.io.itk_io import read_itk, write_itk

KINDS = ("ct", "map")
_GEOMETRY_ATOL_MM = 1e-4


class WriteVerificationError(RuntimeError):
    """A file read back differently from what was written (a bug or a full disk, not a user error)."""


def output_format(path: str | Path, format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given (checked against the extension), else from the
    extension; a path without an image extension is a DICOM series folder.

    Raises:
        ConfigError: unknown ``format`` or one that contradicts the extension.
    """
    from_name = format_of_name(path) or "dicom"
    if format is None:
        return from_name
    fmt = format.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"format: got '{format}', allowed: {', '.join(FORMATS)}")
    if fmt != from_name:
        suffixes = suffixes_of(fmt) or ("no image extension (a folder)",)
        raise ConfigError(
            f"format '{fmt}' does not match output '{path}' (read as {from_name}); for {fmt} use "
            f"{' or '.join(suffixes)}"
        )
    return fmt


def volume_parts(volume: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y, Z)`` float array and 4×4 RAS affine of a ``(1, X, Y, Z)`` or ``(X, Y, Z)`` volume.

    A plain tensor/array (no ``.affine``) gets the identity affine (1 mm voxels at the origin).
    """
    affine = getattr(volume, "affine", None)
    affine = np.eye(4) if affine is None else np.asarray(torch.as_tensor(affine).detach().cpu(), dtype=np.float64)
    if affine.shape == (3, 3):  # a 2D MetaTensor's affine: lift it to 3D with a unit z axis
        lifted = np.eye(4)
        lifted[:2, :2], lifted[:2, 3] = affine[:2, :2], affine[:2, 2]
        affine = lifted
    if isinstance(volume, torch.Tensor):
        tensor = volume.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):  # AMP outputs; numpy has no bfloat16
            tensor = tensor.float()
        data = tensor.as_tensor().numpy() if hasattr(tensor, "as_tensor") else tensor.numpy()
    else:
        data = np.asarray(volume)
    if data.ndim == 4:
        if data.shape[0] != 1:
            raise InputError(f"volume must have one channel (1, X, Y, Z), got shape {tuple(data.shape)}")
        data = data[0]
    if data.ndim != 3:
        raise InputError(f"volume must be (1, X, Y, Z) or (X, Y, Z), got shape {tuple(data.shape)}")
    if affine.shape != (4, 4):
        raise InputError(f"volume affine must be 4x4, got {affine.shape}")
    return data, affine


def slices_along_normal(data: np.ndarray, affine_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same voxels in the same world positions, with slices stepping along +(row × column) direction.

    DICOM readers (medgan's, SimpleITK's, Slicer's) sort slices along the plane normal; a left-handed grid
    (slice step against the normal, e.g. a NIfTI in radiological order) is reversed in z here so that
    InstanceNumber, the re-read check and every viewer agree on the order.

    Args:
        data: ``(X, Y, Z)`` voxels.
        affine_lps: 4×4 voxel→LPS affine of ``data``.
    """
    normal = np.cross(affine_lps[:3, 0], affine_lps[:3, 1])
    if float(normal @ affine_lps[:3, 2]) >= 0 or data.shape[2] == 1:
        return data, affine_lps
    flipped = affine_lps.copy()
    flipped[:3, 3] = affine_lps[:3, 3] + (data.shape[2] - 1) * affine_lps[:3, 2]
    flipped[:3, 2] = -affine_lps[:3, 2]
    return np.ascontiguousarray(data[:, :, ::-1]), flipped


def _headers_for(volume: object, reference: object | None) -> DicomHeaders | None:
    for source in (volume, reference):
        meta = getattr(source, "meta", None) or {}
        headers = meta.get("dicom_headers")
        if isinstance(headers, DicomHeaders) and len(headers):
            return headers
    return None


def write_volume(
    volume: torch.Tensor | np.ndarray,
    path: str | Path,
    format: str | None = None,
    *,
    overwrite: bool = False,
    kind: Literal["ct", "map"] = "ct",
    description: str = "",
    reference: torch.Tensor | None = None,
) -> Path:
    """Write a volume with its geometry.

    Args:
        volume: ``(1, X, Y, Z)`` (or ``(X, Y, Z)``) in HU for ``kind="ct"``; a ``MetaTensor``'s RAS
            ``.affine`` is the geometry written.
        path: ``.nii``/``.nii.gz``/``.nrrd``/``.nhdr``/``.mha``/``.mhd`` file, or a folder for a DICOM series.
        format: ``"dicom" | "nifti" | "nrrd" | "mha"``; default from ``path``'s extension.
        overwrite: replace an existing output.
        kind: ``"ct"`` rounds to int16 HU (clipped to [-32768, 32767]); ``"map"`` keeps float32 (not DICOM).
        description: SeriesDescription / DerivationDescription of a DICOM series.
        reference: a volume whose ``meta["dicom_headers"]`` is used when ``volume`` has none (e.g. the
            network input of a prediction): the series is then a derived series of that study.

    Returns:
        ``path`` once the written output has been read back and matches.

    Raises:
        ConfigError: bad ``format``/``kind``. OutputExistsError: ``path`` exists without ``overwrite``.
        InputError: bad volume shape, or ``path`` would overwrite an input.
    """
    path = Path(path)
    fmt = output_format(path, format)
    if kind not in KINDS:
        raise ConfigError(f"kind: got '{kind}', allowed: {', '.join(KINDS)}")
    if kind == "map" and fmt == "dicom":
        raise ConfigError(f"kind 'map' (float32) cannot be written as a DICOM CT series ('{path}'); use .nii.gz or .nrrd")
    data, affine_ras = volume_parts(volume)
    if kind == "ct":
        data = _as_int16_hu(data)
    else:
        data = data.astype(np.float32, copy=False)
    inputs = [str((getattr(v, "meta", None) or {}).get("filename_or_obj", "")) for v in (volume, reference)]
    check_output(path, overwrite, inputs)
    if fmt == "dicom" and path.is_dir():
        strangers = [p.name for p in path.iterdir() if p.is_dir() or p.suffix.lower() != ".dcm"]
        if strangers:
            raise InputError(
                f"refusing to replace folder '{path}': it holds non-DICOM entries ({', '.join(strangers[:3])})"
            )
    affine_lps = ras_to_lps(affine_ras)
    if fmt == "nifti":
        _check_not_sheared(path, affine_lps)
    with staged_output(path) as staged:
        if fmt == "dicom":
            data, affine_lps = slices_along_normal(data, affine_lps)
            headers = _headers_for(volume, reference)
            write_ct_series(
                data, affine_lps, staged, headers=headers,
                frame_numbers=None if headers is None else headers.frame_numbers, description=description,
            )
            back = read_dicom(staged)
            back_array, back_affine = back.array, back.affine_lps
        else:
            write_itk(data, affine_lps, staged)
            back_array, back_affine = read_itk(staged)
        _verify(path, data, affine_lps, back_array, back_affine)
    return path


def _check_not_sheared(path: Path, affine_lps: np.ndarray) -> None:
    """NIfTI (through ITK) coerces a sheared grid — e.g. a gantry-tilted DICOM series — to an orthogonal one,
    moving voxels by up to tilt × extent; refuse instead of writing wrong geometry."""
    _, _, direction = grid_from_affine(affine_lps)
    if np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        return
    normal = np.cross(direction[:, 0], direction[:, 1])
    tilt = np.degrees(np.arccos(np.clip(abs(direction[:, 2] @ normal) / np.linalg.norm(normal), 0.0, 1.0)))
    raise InputError(
        f"the volume's grid is sheared (slice axis {tilt:.2f} deg off the plane normal, e.g. gantry tilt); "
        f"NIfTI cannot store it without moving voxels: write '{path.name}' as .nrrd/.mha or a DICOM series, "
        "or resample first"
    )


def _as_int16_hu(data: np.ndarray) -> np.ndarray:
    """Round HU to int16, clipped to its range, holding at most one temporary float copy of the volume
    (``np.clip(np.rint(x))`` held two; inference hands int16 already, which costs no copy at all)."""
    if data.dtype == np.int16:
        return data
    if np.issubdtype(data.dtype, np.integer):
        return np.clip(data, -32768, 32767).astype(np.int16)
    rounded = np.rint(data)
    np.clip(rounded, -32768, 32767, out=rounded)
    return rounded.astype(np.int16)


def _verify(path: Path, data: np.ndarray, affine: np.ndarray, back: np.ndarray, back_affine: np.ndarray) -> None:
    if back.shape != data.shape or not np.array_equal(back, data.astype(back.dtype, copy=False)):
        raise WriteVerificationError(f"'{path}' read back with different voxels; the output was not written")
    if data.shape[2] == 1:
        back_affine, affine = back_affine[:, [0, 1, 3]], affine[:, [0, 1, 3]]  # one slice: z step is a guess
    if not np.allclose(back_affine, affine, atol=_GEOMETRY_ATOL_MM, rtol=0):
        raise WriteVerificationError(
            f"'{path}' read back with a different geometry (max error "
            f"{np.abs(back_affine - affine).max():.2e} mm); the output was not written"
        )
