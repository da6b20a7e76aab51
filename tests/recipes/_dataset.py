"""A tiny real dataset for the training tests: slicerio's chest CT cut into three 11-slice slabs
(three "patients", so train / val / test hold different anatomy), with simulated quarter dose made by
``medgan-prepare ldct``."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path


def chest_slabs(folder: Path) -> Path:
    """Three NRRD slabs of the embedded chest CT in ``folder/scans``."""
    import SimpleITK as sitk

    from medgan.cli.demo import embedded_ct_path

    scans = folder / "scans"
    if not scans.is_dir():
        scans.mkdir(parents=True)
        image = sitk.ReadImage(str(embedded_ct_path()))
        n = image.GetSize()[2]
        for i, patient in enumerate("ABC"):
            sitk.WriteImage(image[:, :, i * n // 3:(i + 1) * n // 3], str(scans / f"{patient}_chest.nrrd"))
    return scans


def make_chest_dataset(folder: Path, dose: float = 0.25, photons: float = 1e5) -> Path:
    from medgan.cli.prepare import main as prepare

    out = folder / "ds"
    code = prepare(["ldct", "--input", str(chest_slabs(folder)), "--output", str(out), "--dose", str(dose),
                    "--photons", str(photons), "--split", "0.34,0.33,0.33", "--views", "180", "--no-progress"])
    assert code == 0 and (out / "dataset.json").is_file()
    return out


def make_sr_dataset(folder: Path, scale: int = 2) -> Path:
    from medgan.cli.prepare import main as prepare

    out = folder / "ds_sr"
    code = prepare(["sr", "--input", str(chest_slabs(folder)), "--output", str(out), "--scale", str(scale),
                    "--split", "0.34,0.33,0.33", "--no-progress"])
    assert code == 0 and (out / "dataset.json").is_file()
    return out


@functools.cache
def _shared_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="medgan-test-chest-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@functools.cache
def shared_chest_dataset() -> Path:
    """:func:`make_chest_dataset` with the defaults, prepared once per test session (read-only: copy it
    before changing anything)."""
    return make_chest_dataset(_shared_folder())


@functools.cache
def shared_sr_dataset() -> Path:
    """:func:`make_sr_dataset` with the defaults, prepared once per test session (read-only)."""
    return make_sr_dataset(_shared_folder())
