"""``medgan-demo``: the README's main command, run on the real chest CT that ships in slicerio."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from medgan.cli._common import run_command


def embedded_ct_path() -> Path:
    """slicerio's chest CT (128x128x34 voxels, HU): the default input of the demo."""
    import slicerio

    return Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medgan-demo", description=__doc__)
    p.add_argument("--output", default="demo_out", help="folder for everything the demo writes")
    p.add_argument("--input", default=None, help="a CT scan to use instead of the embedded chest CT")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    import SimpleITK as sitk

    src = Path(args.input) if args.input else embedded_ct_path()
    image = sitk.ReadImage(str(src))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    arr = sitk.GetArrayViewFromImage(image)
    print(f"read {src}: size {image.GetSize()}, spacing {image.GetSpacing()}, HU [{arr.min()}, {arr.max()}]")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command("medgan-demo", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
