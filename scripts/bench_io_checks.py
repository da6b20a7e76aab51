"""What the bad-input checks cost on a read: ``read_volume`` with and without them, interleaved.

The checks are the NIfTI header/length check (nibabel, before ITK reads), the NaN/Inf scan of every
volume, and for float NIfTI the voxels read by nibabel (ITK would turn NaN into 0) with only the grid
from ITK. The
volume is the slicerio chest CT (128 × 128 × 34 HU) resampled in-plane to ``--size``², written as int16
NIfTI, float32 NIfTI and NRRD. CPU time (``time.process_time``), median of ``--repeat`` per round,
rounds A/B interleaved so that load from other processes hits both alike. Prints a table; gates nothing.

    .venv/bin/python scripts/bench_io_checks.py --size 256 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="in-plane size (default 256)")
    parser.add_argument("--repeat", type=int, default=5, help="reads per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved A/B rounds (default 3)")
    args = parser.parse_args()

    import slicerio

    import medgan.io.itk_io as itk_io
    import medgan.io.reader as reader
    from medgan.io import read_volume

    chest = sitk.ReadImage(str(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"))
    spacing = [s * chest.GetSize()[0] / args.size for s in chest.GetSpacing()[:2]] + [chest.GetSpacing()[2]]
    chest = sitk.Resample(chest, [args.size, args.size, chest.GetSize()[2]], sitk.Transform(), sitk.sitkLinear,
                          chest.GetOrigin(), spacing, chest.GetDirection(), -1024, sitk.sitkInt16)
    checks = (itk_io.check_nifti, reader.fill_non_finite)

    def set_checks(on: bool) -> None:
        itk_io.check_nifti, reader.fill_non_finite = checks if on else (lambda p: None, lambda a, p, f: a)

    def cpu_ms(path: Path) -> float:
        times = []
        for _ in range(args.repeat):
            start = time.process_time()
            read_volume(path)
            times.append(time.process_time() - start)
        return 1000 * statistics.median(times)

    with tempfile.TemporaryDirectory() as tmp:
        files = {"int16 .nii.gz": (chest, "a.nii.gz"), "float32 .nii.gz": (sitk.Cast(chest, sitk.sitkFloat32), "b.nii.gz"),
                 "int16 .nrrd": (chest, "c.nrrd")}
        print(f"read_volume, {args.size}x{args.size}x{chest.GetSize()[2]} chest CT, CPU ms (median of {args.repeat}, "
              f"{args.rounds} interleaved rounds)")
        print("| file | without checks | with checks | ratio |")
        print("|---|---|---|---|")
        for label, (image, name) in files.items():
            path = Path(tmp) / name
            sitk.WriteImage(image, str(path), useCompression=True)
            result = {False: [], True: []}
            for _ in range(args.rounds):
                for on in (False, True):
                    set_checks(on)
                    result[on].append(cpu_ms(path))
            off, on = np.mean(result[False]), np.mean(result[True])
            print(f"| {label} | {off:.1f} | {on:.1f} | {on / off:.2f} |")
        set_checks(True)


if __name__ == "__main__":
    main()
