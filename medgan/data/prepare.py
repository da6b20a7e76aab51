"""Build datasets in the medgan layout (``docs/data_layout.md``) from scans: what ``medgan-prepare`` runs.

* :func:`prepare_ldct`: full-dose scans -> simulated low-dose ``source`` + the scans as ``target``;
* :func:`prepare_sr`: scans -> degraded low-resolution ``source`` + the scans as ``target``;
* :func:`prepare_tcia`: the TCIA LDCT-and-Projection-data image series -> real low/full-dose pairs.

All three split by patient (never one patient in two splits), write into a temporary sibling of the
output folder and rename it into place at the end, and never touch their inputs. Targets in the input's
own format are copied byte for byte (a DICOM series stays the original series); everything else goes
through :func:`medgan.io.write_volume`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import statistics
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medgan.errors import ConfigError, InputError
from medgan.io.formats import DEFAULT_SUFFIX, DETACHED_HEADER_SUFFIXES, format_of_name
from medgan.io.formats import FORMATS as IO_FORMATS
from medgan.io.layout import (
    case_entries,
    discover_cases,
    is_dicom_file,
    parse_split,
    patient_of,
    split_by_patient,
    volume_suffix,
    write_manifest,
)

FORMATS = ("same", *(f for f in IO_FORMATS if f != "dicom"))  # a dataset is written as files
MANIFEST_VERSION = 1


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: got '{fmt}', allowed: {', '.join(FORMATS)}")


def output_name(case: str, source: Path, fmt: str) -> str:
    """The file (or DICOM folder) name of ``case`` in the dataset for output format ``fmt``."""
    if fmt != "same":
        return case + DEFAULT_SUFFIX[fmt]
    if source.is_dir():
        return case  # a DICOM series folder
    suffix = volume_suffix(source) or ""
    # A .mhd/.nhdr header points at a separate data file; a single .mha/.nrrd keeps the case self-contained.
    return case + (DEFAULT_SUFFIX[format_of_name(source)] if suffix in DETACHED_HEADER_SUFFIXES else suffix)


def _copy_case(source: Path, dest: Path) -> None:
    """Copy a volume file or the DICOM files of a series folder unchanged."""
    if source.is_dir():
        dest.mkdir(parents=True)
        for f in sorted(source.iterdir()):
            if f.is_file() and is_dicom_file(f):
                shutil.copy2(f, dest / f.name)
    else:
        shutil.copy2(source, dest)


def place_target(source: Path, dest: Path, fmt: str, volume: Any | None = None) -> None:
    """Put the clean scan at ``dest``: copied as is when the format is unchanged, else re-written."""
    if fmt == "same" and volume_suffix(source) not in DETACHED_HEADER_SUFFIXES:
        _copy_case(source, dest)
        return
    from medgan.io import read_volume, write_volume

    write_volume(volume if volume is not None else read_volume(source), dest, kind="ct")


def case_seed(seed: int, case: str) -> int:
    """A per-case seed: depends on the run seed and the case name only, not on the processing order."""
    return (int(seed) * 1_000_003 + zlib.crc32(case.encode())) % (2**63)


def _base_manifest(
    task: str, input_dir: Path, seed: int, fractions: tuple[float, ...], fmt: str
) -> dict[str, Any]:
    from medgan import __version__

    return {
        "manifest_version": MANIFEST_VERSION,
        "task": task,
        "medgan_version": __version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "input": str(input_dir.resolve()),
        "seed": seed,
        "split_fractions": list(fractions),
        "format": fmt,
    }


def _scan_inputs(input_dir: str | Path, patient_regex: str | None) -> tuple[dict[str, Path], dict[str, str]]:
    cases = discover_cases(input_dir)
    if not cases:
        raise InputError(
            f"--input: no scans in {input_dir} (expected .nii.gz/.nii/.nrrd/.mha/.mhd files or DICOM series folders)"
        )
    return cases, {c: patient_of(c, patient_regex) for c in cases}


def _build(
    output: str | Path,
    overwrite: bool,
    inputs: list[Path],
    work: Callable[[Path], dict[str, Any]],
) -> Path:
    """Run ``work(staged_root)`` (which fills the folder and returns the manifest), then move it into place.

    The input folders the manifest names (:data:`INPUT_KEYS`) are stored relative to the dataset, so
    ``dataset.json`` holds no absolute path of the machine it was made on."""
    from medgan.io.atomic import check_output, staged_output

    out = Path(output)
    check_output(out, overwrite, inputs)
    with staged_output(out) as staged:
        staged.mkdir()
        manifest = work(staged)
        for key in INPUT_KEYS:
            if manifest.get(key):
                manifest[key] = Path(os.path.relpath(Path(manifest[key]).resolve(), out.resolve())).as_posix()
        write_manifest(staged, manifest)
    return out


#: manifest keys that name input folders (of ``prepare_*`` and ``prepare_unpaired``)
INPUT_KEYS = ("input", "input_full", "pairs")


def _make_dirs(root: Path) -> None:
    for split in ("train", "val", "test"):
        for role in ("source", "target"):
            (root / split / role).mkdir(parents=True, exist_ok=True)


def _derive_each(
    cases: Mapping[str, Path],
    split: Mapping[str, list[str]],
    fmt: str,
    make_source: Callable[[str, Any], Any],
    description: str,
    progress: bool,
) -> Callable[[Path], None]:
    """The per-case loop shared by ``ldct`` and ``sr``: read, derive the source, write both."""

    def run(root: Path) -> None:
        from medgan.io import read_volume, write_volume

        _make_dirs(root)
        order = [(s, c) for s in ("train", "val", "test") for c in split[s]]
        for split_name, case in tqdm(order, desc="cases", unit="case", disable=not progress):
            path = cases[case]
            volume = read_volume(path)
            name = output_name(case, path, fmt)
            derived = make_source(case, volume)
            write_volume(
                derived,
                root / split_name / "source" / name,
                kind="ct",
                description=description,
                reference=volume,
            )
            place_target(path, root / split_name / "target" / name, fmt, volume)

    return run


def _check_dose(dose: float) -> None:
    if not 0 < dose <= 1:
        raise ConfigError(f"--dose: got {dose:g}, allowed: a fraction of the full dose in (0, 1]")


def simulate_volume(volume: Any, dose: float, seed: int, **simulator: Any) -> Any:
    """A low-dose version of ``volume`` (MetaTensor (1, X, Y, Z) HU), slice by slice, same geometry and meta.

    The one simulation path of ``medgan-simulate`` and ``medgan-prepare ldct``:
    :class:`medgan.transforms.lowdose.SimulateLowDosed` with noise seed ``seed`` (pixel size from the
    affine, slice thickness from the DICOM headers or the z spacing, relative mode calibrated to the scan).
    The calibration used is in the result's ``meta["medgan_dose_calibration"]`` (relative mode).

    Args:
        simulator: keyword arguments of :class:`~medgan.transforms.lowdose.SimulateLowDosed`.
    """
    from medgan.transforms.lowdose import SimulateLowDosed

    return SimulateLowDosed("image", dose, **simulator).simulate(volume, dose, seed)


def describe_simulation(low: Any, noise_source: str | None = None) -> str:
    """What a :func:`simulate_volume` result was made with, in one phrase (for a command's output);
    ``noise_source`` says where a given full-dose noise level came from (e.g. measured once per patient)."""
    from medgan.transforms.lowdose import CALIBRATION_META, DoseCalibration

    stored = getattr(low, "meta", {}).get(CALIBRATION_META)
    if stored is None:
        return "absolute mode"
    cal = stored if isinstance(stored, DoseCalibration) else DoseCalibration(**stored)
    if noise_source is not None:
        cal = dataclasses.replace(cal, noise_source=noise_source)
    return "relative mode, " + cal.describe()


def patient_noise_hu(cases: Mapping[str, Path], patients: Mapping[str, str]) -> dict[str, float]:
    """One full-dose noise sigma (HU) per patient with several scans: the median of each scan's measured
    noise, as calibration measures it (:func:`medgan.transforms.dose_calibration.scan_noise_hu`).

    Scans of one patient come from one acquisition protocol, but one slab's estimate can be far off (on
    three 3 mm slabs of one chest CT: 16.1, 9.6 and 31.6 HU), and fitting each slab to its own estimate
    gave budgets 45x apart, one of them photon-starved. Scans with no homogeneous soft tissue are skipped;
    patients with one scan, or none measurable, are left out (their scan is calibrated to itself).
    """
    from medgan.io import read_volume
    from medgan.transforms.dose_calibration import scan_noise_hu
    from medgan.transforms.lowdose import pixel_size

    by_patient: dict[str, list[str]] = {}
    for case, patient in patients.items():
        by_patient.setdefault(patient, []).append(case)
    result = {}
    for patient, names in sorted(by_patient.items()):
        if len(names) < 2:
            continue
        sigmas = []
        for case in sorted(names):
            volume = read_volume(cases[case])
            slices = volume.as_tensor()[0].permute(2, 1, 0)  # (Z, Y, X) HU
            try:
                sigmas.append(scan_noise_hu(slices, pixel_size(volume)))
            except ValueError:  # nothing homogeneous to measure on in this scan
                continue
        if sigmas:
            result[patient] = float(statistics.median(sigmas))
    return result


def prepare_ldct(
    input_dir: str | Path,
    output: str | Path,
    dose: float,
    *,
    split: str | tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    fmt: str = "same",
    photons: float | None = None,
    electronic_noise: float = 10.0,
    views: int = 720,
    mode: str = "relative",
    patient_regex: str | None = None,
    noise_hu: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Full-dose scans in ``input_dir`` -> a paired low-dose (source) / full-dose (target) dataset.

    Args:
        input_dir: a folder of scans (volume files or DICOM series folders), one case each.
        output: the dataset folder to create.
        dose: the simulated dose fraction, in (0, 1].
        split: train/val/test fractions of patients.
        seed: split and noise seed (each case's noise depends on the seed and the case name only).
        fmt: ``"same"`` as the input, or ``"nifti"``/``"nrrd"``/``"mha"``.
        photons, electronic_noise, views, mode, noise_hu: :func:`simulate_volume` settings (``photons`` per mm^2
            per view; ``None``: each scan's budget is fitted to its own noise in relative mode).
        patient_regex: how patient ids are read from case names (see :func:`medgan.io.layout.patient_of`).
        overwrite: replace an existing ``output``.
        progress: show a tqdm bar over cases.

    Returns:
        The dataset folder.
    """
    _check_dose(dose)
    _check_format(fmt)
    if mode not in ("relative", "absolute"):
        raise ConfigError(f"--mode: got '{mode}', allowed: relative, absolute")
    for key, value in (("--photons", photons), ("--views", views), ("--noise-hu", noise_hu)):
        if value is not None and not value > 0:
            raise ConfigError(f"{key}: got {value!r}, allowed: > 0")
    if electronic_noise < 0:
        raise ConfigError(f"--electronic-noise: got {electronic_noise!r}, allowed: >= 0")
    fractions = parse_split(split) if isinstance(split, str) else parse_split(list(split))
    cases, patients = _scan_inputs(input_dir, patient_regex)
    assignment = split_by_patient(patients, fractions, seed)
    simulator = {
        "photons": None if photons is None else float(photons),
        "noise_hu": None if noise_hu is None else float(noise_hu),
        "electronic_noise": float(electronic_noise),
        "views": int(views),
        "mode": mode,
    }
    calibrations: dict[str, str] = {}
    per_patient = (patient_noise_hu(cases, patients)
                   if mode == "relative" and photons is None and noise_hu is None else {})

    def make_source(case: str, volume: Any) -> Any:
        # a nested bar over slice batches: one long scan takes minutes at 720 views
        settings = {**simulator, "noise_hu": per_patient.get(patients[case], simulator["noise_hu"])}
        low = simulate_volume(volume, dose, case_seed(seed, case), progress=progress, **settings)
        calibrations[case] = describe_simulation(
            low, "measured once for the patient" if patients[case] in per_patient else None)
        return low

    def work(root: Path) -> dict[str, Any]:
        _derive_each(cases, assignment, fmt, make_source, f"medgan simulated {dose:g} dose", progress)(root)
        manifest = _base_manifest("ldct", Path(input_dir), seed, fractions, fmt)
        manifest.update(
            source="simulated low dose (medgan.transforms.lowdose)",
            target="input full-dose scans",
            dose=dose,
            simulator=simulator,
            simulation={case: calibrations[case] for case in sorted(calibrations)},
            # full-dose noise measured once per patient with several scans (the median of its scans)
            patient_noise_hu=per_patient,
            scale=1,
            cases=case_entries(assignment, patients, label={c: 0 for c in cases}),
        )
        return manifest

    return _build(output, overwrite, [Path(input_dir)], work)


def prepare_sr(
    input_dir: str | Path,
    output: str | Path,
    scale: int,
    *,
    slice_thickness_mm: float | None = None,
    noise_std_hu: float = 0.0,
    split: str | tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    fmt: str = "same",
    patient_regex: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    slice_scale: int = 1,
) -> Path:
    """Scans in ``input_dir`` -> a paired low-resolution (source) / original (target) dataset.

    The source is :func:`medgan.transforms.degrade.degrade_for_sr` (anti-aliased in-plane down-sampling by
    ``scale``, optionally thicker slices and white noise of ``noise_std_hu``, seeded per case), written with
    its own, exact low-resolution geometry. ``slice_scale`` > 1 also averages that many contiguous slices
    into one (thick -> thin super-resolution; ``scale`` may then be 1).
    """
    _check_format(fmt)
    if isinstance(slice_scale, bool) or not isinstance(slice_scale, int) or slice_scale < 1:
        raise ConfigError(f"--slice-scale: got {slice_scale!r}, allowed: an integer >= 1")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < (1 if slice_scale > 1 else 2):
        raise ConfigError(f"--scale: got {scale!r}, allowed: an integer >= 2 (>= 1 with --slice-scale)")
    if slice_thickness_mm is not None and not slice_thickness_mm > 0:
        raise ConfigError(f"--slice-thickness: got {slice_thickness_mm!r} mm, allowed: > 0")
    if not noise_std_hu >= 0:
        raise ConfigError(f"--noise: got {noise_std_hu!r} HU, allowed: >= 0")
    fractions = parse_split(split) if isinstance(split, str) else parse_split(list(split))
    cases, patients = _scan_inputs(input_dir, patient_regex)
    assignment = split_by_patient(patients, fractions, seed)

    def make_source(case: str, volume: Any) -> Any:
        from medgan.transforms.degrade import degrade_for_sr

        return degrade_for_sr(
            volume, scale, slice_thickness_mm, noise_std_hu=noise_std_hu, seed=case_seed(seed, case),
            slice_scale=slice_scale,
        )

    def work(root: Path) -> dict[str, Any]:
        _derive_each(cases, assignment, fmt, make_source, f"medgan low-resolution x{scale}", progress)(root)
        manifest = _base_manifest("sr", Path(input_dir), seed, fractions, fmt)
        manifest.update(
            source=f"degraded low resolution (medgan.transforms.degrade, x{scale})",
            target="input scans",
            scale=scale,
            slice_scale=slice_scale,
            slice_thickness_mm=slice_thickness_mm,
            noise_std_hu=noise_std_hu,
            cases=case_entries(assignment, patients, label={c: 0 for c in cases}),
        )
        return manifest

    return _build(output, overwrite, [Path(input_dir)], work)


def prepare_tcia(
    input_dir: str | Path,
    output: str | Path,
    *,
    split: str | tuple[float, float, float] = (0.7, 0.2, 0.1),
    seed: int = 0,
    fmt: str = "same",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """The TCIA LDCT-and-Projection-data image series -> real low-dose (source) / full-dose (target) pairs.

    Split by patient and balanced by exam type (each of chest/abdomen/head split with the same fractions;
    the default 0.7/0.2/0.1 is the ldct-benchmark's 105/30/15 of 150). Each case is named after its patient
    and carries ``exam`` (C/L/N), ``dose`` and ``label`` (0 chest, 1 abdomen, 2 head) in ``dataset.json``.
    """
    from medgan.data.tcia import DOSE, EXAMS, LABELS, find_tcia_patients

    _check_format(fmt)
    fractions = parse_split(split) if isinstance(split, str) else parse_split(list(split))
    found = find_tcia_patients(input_dir)
    patients = {p.patient: p.patient for p in found}
    assignment = split_by_patient(patients, fractions, seed, strata={p.patient: p.exam for p in found})
    by_id = {p.patient: p for p in found}

    def work(root: Path) -> dict[str, Any]:
        _make_dirs(root)
        order = [(s, c) for s in ("train", "val", "test") for c in assignment[s]]
        for split_name, case in tqdm(order, desc="patients", unit="patient", disable=not progress):
            item = by_id[case]
            name = output_name(case, item.full, fmt)
            place_target(item.low, root / split_name / "source" / name, fmt)
            place_target(item.full, root / split_name / "target" / name, fmt)
        manifest = _base_manifest("tcia-ldct", Path(input_dir), seed, fractions, fmt)
        manifest.update(
            source="Low Dose Images (TCIA LDCT-and-Projection-data)",
            target="Full Dose Images",
            dose={EXAMS[k]: v for k, v in DOSE.items()},
            label_names={str(v): EXAMS[k] for k, v in LABELS.items()},
            scale=1,
            cases=case_entries(
                assignment,
                patients,
                exam={p: by_id[p].exam for p in patients},
                dose={p: DOSE[by_id[p].exam] for p in patients},
                label={p: LABELS[by_id[p].exam] for p in patients},
            ),
        )
        return manifest

    return _build(output, overwrite, [Path(input_dir)], work)


__all__ = ["FORMATS", "describe_simulation", "prepare_ldct", "prepare_sr", "prepare_tcia", "simulate_volume"]
