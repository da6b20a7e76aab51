"""``medgan-convert``: convert a CT between DICOM series, NIfTI, NRRD and MHA with its geometry intact.

Examples:
    medgan-convert scan_dicom/ scan.nii.gz
    medgan-convert scan.nrrd out_series --format dicom
    medgan-convert study_folder/ scan.nrrd --series-uid 1.2.840.113619.2.55.3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from medgan.cli._common import ArgumentParser, run_command
from medgan.io.formats import FORMATS  # paths only: --help stays free of torch


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="medgan-convert",
        description="Convert a CT volume between DICOM, NIfTI, NRRD and MHA. HU stay exact (int16), spacing, "
        "origin and orientation are kept; a DICOM output is a new series (of the source study when the "
        "input is DICOM).",
        epilog=__doc__.split("Examples:", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="DICOM series folder, DICOM file, .nii/.nii.gz, .nrrd/.nhdr or .mha/.mhd; or an "
                   "archive series: dicomweb[s]://host:port/prefix/studies/UID/series/UID, "
                   "dimse://AET@host:port/studies/UID/series/UID")
    p.add_argument("output", help="output file (.nii.gz, .nii, .nrrd, .mha, .mhd) or folder (DICOM series); or an "
                   "archive: dicomweb[s]://host:port/prefix, dimse://AET@host:port")
    p.add_argument("--calling-aet", default=None,
                   help="our AE title for dimse:// URLs (default: $MEDGAN_AET, else MEDGAN)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default: from OUTPUT's extension; no image extension = DICOM folder)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--series-uid", default=None,
                   help="SeriesInstanceUID to read when the input folder holds several series")
    p.add_argument("--nan-fill", type=float, default=None, metavar="HU",
                   help="replace NaN/Inf voxels with this HU (default: refuse an input that has any)")
    p.add_argument("--description", default="medgan-convert",
                   help="SeriesDescription of a DICOM output (default: %(default)s)")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from pathlib import Path

    from medgan.errors import MissingFileError
    from medgan.pacs import is_pacs_url, pacs_staging

    if not is_pacs_url(args.input) and not Path(args.input).exists():  # answer before importing torch
        raise MissingFileError(f"input '{args.input}' does not exist")

    from medgan.io import output_format, read_volume, write_volume
    from medgan.io.atomic import check_writable
    from medgan.io.geometry import voxel_spacing

    # an archive URL is a temporary local folder here: downloaded first, the DICOM output uploaded after
    with pacs_staging(args.input, args.output, args.format or "same", args.calling_aet) as stage:
        # fail on a contradictory --format before reading
        fmt = output_format(stage.output, None if stage.format == "same" else stage.format)
        check_writable(Path(stage.output))
        volume = read_volume(stage.input, series_uid=args.series_uid, nan_fill=args.nan_fill)
        out = write_volume(volume, stage.output, fmt, overwrite=args.overwrite, description=args.description)
        out = stage.finish([out])[0]
    spacing = voxel_spacing(volume.affine)
    print(
        f"wrote {out} ({fmt}): {tuple(volume.shape[1:])} voxels, spacing "
        f"{tuple(round(float(s), 4) for s in spacing)} mm, HU [{volume.min().item():.0f}, {volume.max().item():.0f}]"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``medgan-convert``; returns the exit code (0 ok, 2 user error, 1 unexpected)."""
    return run_command("medgan-convert", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
