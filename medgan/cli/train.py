"""``medgan-train``: train a recipe from a YAML config, with ``key.sub=value`` overrides.

Examples:
    medgan-train --config configs/ldct_cyclegan.yaml data.root=datasets/ldct run.dir=runs/cyclegan
    medgan-train --config configs/ldct_cyclegan.yaml run.dir=runs/cyclegan trainer.max_steps=20000 --resume
    medgan-train --config configs/ldct_redcnn.yaml trainer.devices=4 trainer.strategy=ddp \\
        trainer.precision=bf16-mixed
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from medgan.cli._common import ArgumentParser, run_command

EPILOG = """\
overrides: any config key as key.sub=value; values are YAML (lists [64,64], floats 1e-4, true/false, null).
outputs (run.dir): config.yaml, checkpoints/{last,best}.ckpt, model/ (model package of the final weights),
model_best/ (best validation SSIM), samples/*.png, tb/ (TensorBoard), metrics.csv.
exit codes: 0 done, 2 bad config / input (one line on stderr), 1 unexpected failure.
See docs/configuration.md for every key and docs/training.md for multi-GPU and SLURM launches."""


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="medgan-train", description="Train a medgan recipe from a YAML config, with key.sub=value overrides.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("--resume", action="store_true",
                   help="continue from run.dir/checkpoints/last.ckpt (weights, optimisers, schedules, step, RNG, "
                        "image pools); raise trainer.max_steps to train longer")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in run.dir")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    return p


def _body(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.resume and args.overwrite:
        from medgan.errors import ConfigError

        raise ConfigError("--resume and --overwrite exclude each other")
    from medgan.config import config_to_dict, load_config

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    from lightning.pytorch.utilities import rank_zero_only

    from medgan.engine import train

    result = train(cfg, resume=args.resume, overwrite=args.overwrite)
    if rank_zero_only.rank == 0:
        scores = ", ".join(f"{k.removeprefix('val/')} {v:.4g}" for k, v in sorted(result.metrics.items()))
        print(f"run: {result.run_dir}")
        print(f"  checkpoint:  {result.last_ckpt}" + (f" (best: {result.best_ckpt})" if result.best_ckpt else ""))
        print(f"  model:       {result.model_dir}  (medgan-infer --model {result.model_dir})")
        print(f"  panels:      {result.run_dir / 'samples'}")
        print(f"  TensorBoard: tensorboard --logdir {result.run_dir / 'tb'}")
        print(f"  metrics:     {result.run_dir / 'metrics.csv'}" + (f"  (last validation: {scores})" if scores else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command("medgan-train", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
