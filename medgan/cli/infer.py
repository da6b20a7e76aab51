"""``medgan-infer``: run a trained model over CT scans and write the results in medical formats.

Examples:
    medgan-infer --model runs/cyclegan/model --input low_dose_series/ --output denoised/
    medgan-infer --model model.onnx --backend onnx --input scans/ --output out/ --format nifti
    torchrun --nproc-per-node 2 -m medgan.cli.infer --model m/ --input scans/ --output out/
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from medgan.cli._common import ArgumentParser, run_command
from medgan.io.formats import FORMATS

PROG = "medgan-infer"


def _roi(text: str) -> str | list[int]:
    if text in ("full", "patch"):
        return text
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected 'full', 'patch' or sizes like 256,256; got '{text}'") from err
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be >= 1, got '{text}'")
    return values


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="Exit codes: 0 ok, 2 bad input/model/arguments (one line on stderr), 1 unexpected failure.",
    )
    p.add_argument("--model", required=True,
                   help="model package folder (model.safetensors + medgan.yaml), a .ckpt, or an .onnx from "
                        "medgan-export (with --backend onnx)")
    p.add_argument("--input", required=True,
                   help="one scan (DICOM series folder or file, .nii/.nii.gz, .nrrd, .mha) or a folder of scans; or "
                        "a series in an archive: dicomweb[s]://host:port/prefix/studies/UID/series/UID or "
                        "dimse://AET@host:port/studies/UID/series/UID")
    p.add_argument("--output", required=True,
                   help="output file / DICOM series folder for one scan; the output folder for a folder of "
                        "scans (one output per case, named after it). Never inside the input folder. An archive "
                        "(dicomweb[s]://host:port/prefix or dimse://AET@host:port) stores the derived series in "
                        "the source study")
    p.add_argument("--format", default="same", choices=["same", *FORMATS],
                   help="output format; 'same' keeps the input's (a DICOM series in gives a derived DICOM "
                        "series of the same study out). Default: same")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (default: 4)")
    p.add_argument("--overlap", type=float, default=0.25, help="window overlap fraction in [0, 1) (default: 0.25)")
    p.add_argument("--blend", default="gaussian", choices=["gaussian", "constant"],
                   help="weighting of overlapping windows (default: gaussian)")
    p.add_argument("--roi-size", type=_roi, default=None,
                   help="window: 'full' (whole slice), 'patch' (the package's training patch) or sizes like "
                        "256,256 / 96,96,96. Default: full for 2D/2.5D models, patch for 3D")
    p.add_argument("--slab-slices", type=int, default=32,
                   help="slices held in the network at once; bounds memory on long scans (default: 32)")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"], help="runtime (default: torch)")
    p.add_argument("--precision", default="auto", choices=["auto", "32", "bf16", "16"],
                   help="torch backend: auto = fp16 autocast on CUDA, float32 on CPU; bf16 also runs on CPUs "
                        "(the output is float32 HU either way; default: auto)")
    p.add_argument("--series-uid", default=None,
                   help="SeriesInstanceUID to use when a DICOM folder holds several series")
    p.add_argument("--nan-fill", type=float, default=None, metavar="HU",
                   help="replace NaN/Inf voxels of an input with this HU (default: refuse such inputs)")
    p.add_argument("--calling-aet", default=None,
                   help="our AE title for dimse:// URLs (default: $MEDGAN_AET, else MEDGAN)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from medgan.inference import run_inference

    # this rank's cases (RANK/WORLD_SIZE under torchrun); every output is checked before the model loads
    written = run_inference(args.model, args.input, args.output, args.format, overwrite=args.overwrite,
                            progress=not args.no_progress, series_uid=args.series_uid, nan_fill=args.nan_fill,
                            device=args.device, batch_size=args.batch_size,
                            overlap=args.overlap, blend=args.blend, roi_size=args.roi_size,
                            backend=args.backend, precision=args.precision, slab_slices=args.slab_slices, calling_aet=args.calling_aet)
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
