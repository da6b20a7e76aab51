"""``medgan-export``: export a model package's generator to ONNX for onnxruntime or other runtimes.

``--bundle DIR`` writes a MONAI Bundle instead (docs/bundle.md).

The graph takes ``image`` (batch, channels, *spatial) in the model's normalised units with dynamic batch
and spatial sizes; the manifest travels in the file's metadata, so ``medgan-infer --backend onnx --model
OUT.onnx`` needs nothing else.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from medgan.cli._common import ArgumentParser, run_command

PROG = "medgan-export"


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                epilog="Exit codes: 0 ok, 2 bad model/arguments, 1 unexpected failure.")
    p.add_argument("--model", required=True, help="model package folder (model.safetensors + medgan.yaml) or .ckpt")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--onnx", help="output .onnx file")
    out.add_argument("--bundle", metavar="DIR",
                     help="output MONAI Bundle folder (configs/ + models/) for `python -m monai.bundle run`")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from medgan.errors import ConfigError

    if args.bundle is not None:
        from medgan.bundle import export_bundle

        print(f"wrote {export_bundle(args.model, args.bundle, overwrite=args.overwrite)}")
        return 0
    if not args.onnx.endswith(".onnx"):
        raise ConfigError(f"--onnx {args.onnx}: the output name must end in .onnx")
    from medgan.inference import export_onnx

    print(f"wrote {export_onnx(args.model, args.onnx, opset=args.opset, overwrite=args.overwrite)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
