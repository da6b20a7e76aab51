"""Time medgan.io on a clinical-size CT series, per transfer syntax, against SimpleITK (GDCM) as reference.

The volume is the slicerio chest CT resampled to ``--size``² × ``--slices`` (HU kept as integers).
Prints a table; nothing here gates anything.

    .venv/bin/python scripts/bench_io.py --size 512 --slices 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.dicom_fixtures


def _timed(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import SimpleITK as sitk
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless
    from skimage.transform import resize

    from medgan.io import read_volume, write_volume
    from tests.dicom_fixtures import load_chest, write_dicom_series

    chest = load_chest().astype(np.float32)
    volume = np.rint(resize(chest, (args.size, args.size, args.slices), order=1, preserve_range=True)).astype(np.int16)
    mb = volume.nbytes / 2**20
    print(f"volume {volume.shape} int16 = {mb:.0f} MiB; best of {args.repeat}\n")
    print(f"{'input':<22}{'medgan read_volume':>20}{'SimpleITK series':>18}{'same HU':>9}")

    def sitk_read(folder: Path) -> np.ndarray:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        return sitk.GetArrayFromImage(reader.Execute())

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, syntax in (("explicit VR LE", None), ("RLE lossless", RLELossless),
                             ("JPEG 2000 lossless", JPEG2000Lossless), ("JPEG-LS lossless", JPEGLSLossless)):
            folder = root / name.replace(" ", "_")
            write_dicom_series(volume, folder, transfer_syntax=syntax)
            t_medgan, ct = _timed(lambda f=folder: read_volume(f), args.repeat)
            try:
                t_sitk, ref = _timed(lambda f=folder: sitk_read(f), args.repeat)
                same = np.array_equal(ref.transpose(2, 1, 0), ct[0].numpy())
                sitk_cell = f"{t_sitk:>16.2f} s"
            except RuntimeError:
                sitk_cell, same = f"{'cannot decode':>18}", "-"
            print(f"{name:<22}{t_medgan:>18.2f} s{sitk_cell}{str(same):>9}")

        ct = read_volume(root / "explicit_VR_LE")
        print(f"\n{'output':<22}{'write_volume (incl. re-read check)':>36}")
        for name, target in (("DICOM series", "out_series"), ("NIfTI .nii.gz", "out.nii.gz"),
                             ("NRRD (gzip)", "out.nrrd"), ("MHA (compressed)", "out.mha")):
            t, _ = _timed(lambda t=target: write_volume(ct, root / t, overwrite=True), args.repeat)
            print(f"{name:<22}{t:>34.2f} s")


if __name__ == "__main__":
    main()
