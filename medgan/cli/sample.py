"""``medgan-sample``: draw synthetic CT from a generative model (DCGAN, cGAN, VAE prior) in HU with geometry.

Examples:
    medgan-sample --model runs/synth_cgan/model --n 64 --class lung --seed 0 --output samples_lung/
    medgan-sample --model runs/anomaly_vae/model --n 16 --output vae_prior/ --format nifti

The output folder holds one file per sample (sample_0000.nrrd ...; PNG stores HU + 1024 as 16-bit),
contact_sheet.png, samples.csv (file, class, latent seed of each sample: sample i uses seed + i, so any
one can be drawn again alone) and samples.json (the summary, including the pixel size written and whether
it was assumed because the package does not record the training data's).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from medgan.cli._common import ArgumentParser, run_command

PROG = "medgan-sample"


def window_arg(text: str) -> tuple[float, float]:
    """``--window``: ``chest`` / ``soft_tissue`` ... or ``CENTER,WIDTH`` -> ``(low, high)`` HU (pydantic-free
    parse deferred to the call, so ``--help`` stays light)."""
    from medgan.config import parse_window
    from medgan.errors import ConfigError

    try:
        return parse_window(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1]
        + "\nExit codes: 0 ok, 2 bad model/arguments/output (one line on stderr), 1 unexpected failure.",
    )
    p.add_argument("--model", required=True,
                   help="model package folder or .ckpt of recipe dcgan, cgan or vae (the VAE samples its prior)")
    p.add_argument("--n", type=int, default=64, help="number of samples (default: 64)")
    p.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                   help="cGAN class to draw (name or index); default: cycle through all classes")
    p.add_argument("--seed", type=int, default=None,
                   help="base latent seed; sample i uses seed + i (default: a random one, recorded in samples.json)")
    p.add_argument("--output", required=True, help="output folder (created whole, or not at all)")
    p.add_argument("--format", default="nrrd", choices=["nrrd", "nifti", "png"],
                   help="sample files: nrrd / nifti (int16 HU with pixel size) or png (16-bit HU + 1024, 2D "
                        "models) (default: nrrd)")
    p.add_argument("--window", type=window_arg, default=None,
                   help="contact-sheet HU window: chest, abdomen, soft_tissue ... or CENTER,WIDTH; a negative centre "
                        "needs the = form, --window=-600,1500 (default: the model's HU range)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from medgan.synthesis.sampling import write_samples

    summary = write_samples(args.model, args.output, args.n, class_name=args.class_name, seed=args.seed,
                            fmt=args.format, window=args.window, overwrite=args.overwrite, device=args.device)
    spacing = " x ".join(f"{s:g}" for s in summary["spacing_mm"])
    note = " (assumed: the package does not record the training pixel size)" if summary["spacing_assumed"] else ""
    print(f"wrote {summary['n']} samples to {summary['output']} (seed {summary['seed']}, pixel size {spacing} mm{note})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
