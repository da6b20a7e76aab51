"""``medgan-dream``: Deep Dream on a medgan net: amplify what one layer responds to in a scan or in noise.

Examples:
    medgan-dream --model runs/synth_cgan/checkpoints/last.ckpt --list-layers
    medgan-dream --model runs/synth_cgan/checkpoints/last.ckpt --layer discriminator.stages.1 \\
        --input chest.nrrd --output dream.png
    medgan-dream --model runs/anomaly_ae/model --layer generator.net.encode --input noise --output ae.png

A package folder holds the nets inference needs (generator, autoencoder); a training .ckpt also holds the
discriminators. Writes the PNG figure (input, dreamed, difference) and the dreamed slice in HU as
<output>.nrrd with the input slice's geometry (int16).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from medgan.cli._common import ArgumentParser, run_command
from medgan.cli.sample import window_arg

PROG = "medgan-dream"


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1]
        + "\nExit codes: 0 ok, 2 bad model/layer/input/arguments (one line on stderr), 1 unexpected failure.",
    )
    p.add_argument("--model", required=True, help="model package folder or training .ckpt")
    p.add_argument("--list-layers", action="store_true", help="print every layer name, type and output shape, then exit")
    p.add_argument("--layer", help="layer to amplify: <net role>.<module path>, e.g. discriminator.stages.1")
    p.add_argument("--input", default="noise",
                   help="a scan (file or DICOM folder; its centre slice, or --slice) or 'noise' (default: noise)")
    p.add_argument("--output", help="PNG figure to write; the dreamed HU slice goes beside it as .nrrd")
    p.add_argument("--octaves", type=int, default=4, help="number of scales (default: 4)")
    p.add_argument("--steps", type=int, default=20, help="ascent steps per octave (default: 20)")
    p.add_argument("--lr", type=float, default=0.01, help="step size in normalised units (default: 0.01)")
    p.add_argument("--jitter", type=int, default=4, help="random roll per step, pixels (default: 4)")
    p.add_argument("--slice", dest="slice_index", type=int, default=None, help="slice of the scan (default: centre)")
    p.add_argument("--label", type=int, default=0, help="class fed to conditional nets (default: 0)")
    p.add_argument("--window", type=window_arg, default=None, help="figure HU window: chest, soft_tissue ... or CENTER,WIDTH (negative centre: --window=-600,1500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise input and the jitter (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return p


def _body(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.list_layers and (args.layer is None or args.output is None):
        parser.error("--layer and --output are required (or --list-layers)")
    from medgan.synthesis.dream import list_layers, load_dream_nets, run_dream

    if args.list_layers:
        rows = list_layers(load_dream_nets(args.model))
        width = max(len(r[0]) for r in rows)
        for name, kind, shape in rows:
            print(f"{name:<{width}}  {kind:<20} {shape}")
        return 0
    result = run_dream(args.model, args.layer, args.input, args.output, octaves=args.octaves, steps=args.steps,
                       lr=args.lr, jitter=args.jitter, label=args.label, slice_index=args.slice_index,
                       window=args.window, seed=args.seed, overwrite=args.overwrite)
    print(f"layer {args.layer}: mean squared activation {result['objective_first']:.4g} -> "
          f"{result['objective_last']:.4g}; wrote {result['png']} and {result['nrrd']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
