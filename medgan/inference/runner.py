"""From paths to paths: plan which input goes to which output, guard the outputs, shard, run.

Every check (missing input, output inside the input folder, existing outputs without ``overwrite``,
format/extension conflicts) happens in :func:`plan_jobs` before any model runs, so a refused command
writes nothing. Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) each rank takes every ``WORLD_SIZE``-th
case of the sorted list; no process group is needed because cases are independent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from medgan.errors import ConfigError, InputError, MissingFileError, OutputExistsError
from medgan.io.atomic import check_writable
from medgan.io.formats import DEFAULT_SUFFIX as EXTENSIONS
from medgan.io.formats import format_of_name, volume_suffix
from medgan.io.scans import find_scans, is_single_scan

FORMAT_CHOICES = ("same", "dicom", "nifti", "nrrd", "mha")


@dataclass(frozen=True)
class Job:
    """One case: read ``input``, write ``output`` in ``format``."""

    input: Path
    output: Path
    format: str


def _input_format(path: Path) -> str:
    from medgan.io import detect_format

    return detect_format(path)


def _is_within(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def plan_jobs(input: str | os.PathLike, output: str | os.PathLike, format: str = "same",
              overwrite: bool = False, rank: int | None = None, world_size: int | None = None) -> list[Job]:
    """Decide this rank's output paths and check them before anything runs.

    Args:
        input: one scan (file or DICOM series folder) or a folder of scans (volume files / series folders).
        output: the output file/series folder for one scan; the output folder for a folder of scans.
        format: ``"same"`` (the input's format; for one scan an image extension on ``output`` wins) or one
            of ``dicom``, ``nifti``, ``nrrd``, ``mha``. A DICOM output is a folder (no extension); a file
            format without its extension on ``output`` gets it appended.
        overwrite: allow replacing existing outputs.
        rank, world_size: this process's share of the cases (see :func:`shard`; default from the
            ``RANK``/``WORLD_SIZE`` environment). Only this rank's outputs are checked for existence, as
            other ranks may already have written theirs.

    Raises:
        MissingFileError: ``input`` does not exist. InputError: ``output`` inside the input folder, or an
        empty folder of scans. ConfigError: bad ``format`` or an extension that contradicts it.
        OutputExistsError: an output exists and ``overwrite`` is false.
    """
    if format not in FORMAT_CHOICES:
        raise ConfigError(f"--format: got '{format}', allowed: {', '.join(FORMAT_CHOICES)}")
    src, dst = Path(input), Path(output)
    if not src.exists():
        raise MissingFileError(f"--input {src} does not exist")
    if src.is_dir() and _is_within(dst, src):
        raise InputError(f"--output {dst} is inside the input folder {src}; choose a path outside it")
    if src.is_file() and dst.exists() and dst.resolve() == src.resolve():
        raise InputError(f"--output {dst} is the input itself; choose another path")
    if is_single_scan(src):
        jobs = [_single_job(src, dst, format)]
    else:
        cases = find_scans(src, "--input")
        jobs = []
        for name, path in cases.items():
            fmt = _input_format(path) if format == "same" else format
            jobs.append(Job(path, dst / f"{name}{EXTENSIONS[fmt]}", fmt))
    jobs = shard(jobs, rank, world_size)
    for job in jobs:  # an unwritable output is refused before the model loads, not after the last case
        check_writable(job.output)
    if not overwrite:
        existing = [j.output for j in jobs if j.output.exists()]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise OutputExistsError(f"{existing[0]} exists{more}; pass --overwrite to replace it")
    return jobs


def _single_job(src: Path, dst: Path, format: str) -> Job:
    named = format_of_name(dst)
    if format == "same":
        fmt = named or _input_format(src)
    else:
        fmt = format
        if named is not None and named != fmt:
            raise ConfigError(f"--format {fmt} does not match --output {dst} (a {named} name); use a "
                              f"'{EXTENSIONS[fmt] or 'folder'}' output or --format {named}")
    if named is None and fmt != "dicom":
        dst = dst.with_name(dst.name + EXTENSIONS[fmt])
    if named is not None and fmt == "dicom":
        raise ConfigError(f"--output {dst}: a DICOM series is written to a folder, not a '{volume_suffix(dst)}' file")
    return Job(src, dst, fmt)


def shard(jobs: Sequence[Job], rank: int | None = None, world_size: int | None = None) -> list[Job]:
    """The jobs of this rank: every ``world_size``-th job from ``rank`` (env ``RANK``/``WORLD_SIZE`` by default)."""
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"RANK={rank} / WORLD_SIZE={world_size}: need 0 <= RANK < WORLD_SIZE")
    return list(jobs[rank::world_size])


def run_jobs(predictor, jobs: Sequence[Job], overwrite: bool = False, progress: bool = True,
             series_uid: str | None = None, nan_fill: float | None = None) -> list[Path]:
    """Read, predict and write every job; returns the written paths (in job order).

    Args:
        predictor: a :class:`medgan.inference.Predictor`.
        jobs: from :func:`plan_jobs` (and :func:`shard`).
        overwrite: passed to :func:`medgan.io.write_volume`.
        progress: tqdm bar over cases (when more than one) and the predictor's bar over slices.
        series_uid: the SeriesInstanceUID to read when a DICOM folder holds several series.
        nan_fill: HU for NaN/Inf voxels of an input; ``None`` refuses such inputs.
    """
    import torch
    from monai.data import MetaTensor

    from medgan.io import read_volume, write_volume

    written = []
    for job in tqdm(jobs, unit="case", desc="cases", disable=not progress or len(jobs) < 2):
        volume = read_volume(job.input, series_uid=series_uid, nan_fill=nan_fill)
        result = predictor.predict(volume)
        # The result carries the input's meta (DICOM headers, source path), which is all the writer needs
        # from the reference; dropping the input's voxels first lowers peak memory by one volume.
        reference = MetaTensor(torch.zeros(0), meta=volume.meta)
        del volume
        # CT outputs are written as int16 HU anyway: rounding in place and handing the writer an int16
        # copy (half the bytes) lowers the peak while it converts and verifies.
        result.as_tensor().round_().clamp_(-32768, 32767)
        result = result.to(torch.int16)
        written.append(write_volume(result, job.output, job.format, overwrite=overwrite, kind="ct",
                                    description=predictor.description, reference=reference))
    return written


def run_inference(model, input: str | os.PathLike, output: str | os.PathLike, format: str = "same",
                  overwrite: bool = False, progress: bool = True, series_uid: str | None = None,
                  nan_fill: float | None = None, calling_aet: str | None = None, **predictor_kw) -> list[Path]:
    """What ``medgan-infer`` does, from Python: plan and check every output, then predict and write.

    Args:
        model: anything :class:`medgan.inference.Predictor` takes.
        input, output, format, overwrite: as in :func:`plan_jobs` (this rank's share under ``torchrun``).
        progress: tqdm bars over cases and slices.
        series_uid: the SeriesInstanceUID to read from DICOM folders that hold several series.
        nan_fill: HU for NaN/Inf voxels of an input; ``None`` refuses such inputs.
        calling_aet: our AE title for ``dimse://`` input/output URLs (see :mod:`medgan.pacs`).
        **predictor_kw: ``device``, ``batch_size``, ``overlap``, ``blend``, ``roi_size``, ``backend``,
            ``slab_slices`` of :class:`~medgan.inference.Predictor`.

    Returns:
        The written outputs (archive URLs for a ``dicomweb://``/``dimse://`` output). Nothing is written when a
        check fails (the model is loaded after the checks).
    """
    from medgan.inference.predictor import Predictor
    from medgan.pacs import pacs_staging

    # an archive URL in or out is a temporary local folder here: downloaded first, uploaded after the run
    with pacs_staging(input, output, format, calling_aet) as stage:
        jobs = plan_jobs(stage.input, stage.output, stage.format, overwrite)
        predictor = Predictor(model, progress=progress, **predictor_kw)
        return stage.finish(run_jobs(predictor, jobs, overwrite=overwrite, progress=progress,
                                     series_uid=series_uid, nan_fill=nan_fill))
