"""Anomaly detection on held-out real CT: every method in one table, same lesions, same budget.

slicerio's chest CT (128×128×34, 3.05×3.05×10 mm) is cut into three axial slabs: nets train on the first
(through ``medgan.engine.train`` with the shipped config and ``trainer.max_time``, as ``medgan-train``
does), calibration uses the second, lesions go into the third, which no method saw. Lesions are spheroids
of 5–15 mm diameter and +50 / +100 / +200 HU whose centres lie in soft tissue (-80..120 HU inside the
body); each draw places ``--lesions`` of them (seeded: the same places at every contrast).

Every map but the baseline is what ``medgan-anomaly`` computes: ``medgan.anomaly.calibrate`` on the
calibration slab's file with ``--map`` set (the CLI's code path: the map is fitted, then the thresholds
are set at ``--fpr``), then the calibrated mapper and mask ``detect`` uses. Rows:

- ``intensity``: the baseline, negative log density of locally averaged HU among calibration body voxels;
- ``median_hu``: net-free, the CLI's defaults (median residual in HU, soft-tissue region, blob preference
  ``--open-mm 9``); also with ``--region body``, ``--open-mm 0`` (voxels) and ``--polarity bright``;
  ``median soft`` is ``--map median`` (per-tissue division) and ``median body`` the previous default;
- ``restorer <map>``: configs/anomaly.yaml with ``--map residual | tissue | combined``;
- ``ae`` / ``vae``: configs/anomaly_ae.yaml, anomaly_vae.yaml with ``--map residual``;
- ``+grow`` / ``+regions``: the recommended map's masks grown to ``--grow`` of their peak residual, or
  without regions under ``--min-size-mm3`` (best Dice then sweeps the threshold with the same masks).

The defaults were chosen with ``--select``: the map calibrated on the training slab and the lesions in the
calibration slab (``--first-seed 0``), so the test slab played no part; its draws are seeded from
``--first-seed`` (100), fresh ones.

Metrics, inside the body, pooled over draws: voxel AUROC, AUPRC (chance = lesion fraction), best Dice (best
threshold), Dice at the threshold calibrated at ``--fpr`` on the calibration slab, slice AUROC (axial
slices holding a lesion vs. not, top-k slice score; the test set is one scan, so slices stand in for
scans), seconds per scan (map of the 11-slice test slab; absolute times depend on the machine's load).

Threads: one by default. Two PyTorch (OpenMP) threads on a 2-core box shared with other jobs made a
training step 13× slower (124 s vs 9.6 s for 30 steps at load 7-9): the threads wait for each other.

    .venv/bin/python scripts/bench_anomaly.py --minutes 10 [--baseline-minutes 2] [--draws 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONTRASTS = (50.0, 100.0, 200.0)


def slab(volume, z0: int, z1: int):
    """Slices ``z0:z1`` of a ``(1, X, Y, Z)`` MetaTensor with the affine moved to the new first slice."""
    from monai.data import MetaTensor

    affine = volume.affine.clone()
    affine[:3, 3] += affine[:3, 2] * z0
    return MetaTensor(volume.as_tensor()[..., z0:z1].clone(), affine=affine)


def train_package(config: str, minutes: float, data_root: Path, run_dir: Path, extra: list[str]) -> tuple[Path, float]:
    """Train ``config`` for ``minutes`` of wall time on ``data_root``; returns the model package and seconds."""
    from medgan.config import load_config
    from medgan.engine import train

    seconds = max(1, round(minutes * 60))
    overrides = [f"data.root={data_root}", f"run.dir={run_dir}",
                 f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}", "data.num_workers=0",
                 "trainer.val_check_interval=100000", "trainer.limit_val_batches=0", *extra]
    cfg = load_config(ROOT / config, overrides)
    t0 = time.perf_counter()
    result = train(cfg, overwrite=True)
    return result.model_dir, time.perf_counter() - t0


def best_dice_masks(maps: list[np.ndarray], truths: list[np.ndarray], bodies: list[np.ndarray],
                    residuals: list[np.ndarray], affine, min_size_mm3: float, grow: float, steps: int = 40) -> float:
    """Best Dice over thresholds (the top 1% of body values, log-spaced in rank) of ``detect``'s masks: grown
    by ``grow``, without regions under ``min_size_mm3``."""
    from medgan.anomaly import anomaly_mask

    values = np.sort(np.concatenate([m[b] for m, b in zip(maps, bodies)]))
    best = 0.0
    for rank in np.unique(np.geomspace(1, 0.01 * values.size, steps).astype(int)):
        threshold = values[values.size - rank]
        overlap = predicted = 0
        for m, t, b, r in zip(maps, truths, bodies, residuals):
            mask = anomaly_mask(torch.from_numpy(m)[None], torch.from_numpy(b)[None], threshold, min_size_mm3,
                                affine, grow, torch.from_numpy(r)[None])[0].numpy()
            overlap, predicted = overlap + int((mask & t).sum()), predicted + int(mask.sum())
        best = max(best, 2.0 * overlap / (predicted + sum(int(t.sum()) for t in truths)))
    return best


def metrics(maps: list[np.ndarray], truths: list[np.ndarray], bodies: list[np.ndarray], residuals: list[np.ndarray],
            threshold: float, min_size_mm3: float, grow: float, affine) -> dict:
    from medgan.anomaly import ScoreConfig, anomaly_mask, auprc, auroc, best_dice, slice_scores

    values = np.concatenate([m[b] for m, b in zip(maps, bodies)])
    labels = np.concatenate([t[b] for t, b in zip(truths, bodies)])
    slice_values, slice_labels, masks = [], [], []
    for m, t, b, r in zip(maps, truths, bodies, residuals):
        slice_values.append(slice_scores(m, ScoreConfig(topk_mm3=6.0), b))  # plain arrays: 6 voxels ≈ 560 mm³
        slice_labels.append(t.any(axis=(0, 1)))
        masks.append(anomaly_mask(torch.from_numpy(m)[None], torch.from_numpy(b)[None], threshold, min_size_mm3,
                                  affine, grow, torch.from_numpy(r)[None])[0].numpy())
    truth_all, mask_all = np.concatenate(truths, 2), np.concatenate(masks, 2)
    dice_cal = 2.0 * (mask_all & truth_all).sum() / (mask_all.sum() + truth_all.sum())
    plain = min_size_mm3 == 0 and grow == 0
    best = best_dice(values, labels) if plain else best_dice_masks(maps, truths, bodies, residuals, affine,
                                                                   min_size_mm3, grow)
    return {"auroc": auroc(values, labels), "auprc": auprc(values, labels), "best_dice": best,
            "dice_cal": float(dice_cal),
            "slice_auroc": auroc(np.concatenate(slice_values), np.concatenate(slice_labels))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training wall time of configs/anomaly.yaml")
    p.add_argument("--baseline-minutes", type=float, default=None, help="AE and VAE training time (default: --minutes)")
    p.add_argument("--draws", type=int, default=3, help="lesion draws per contrast")
    p.add_argument("--lesions", type=int, default=6, help="lesions per draw")
    p.add_argument("--fpr", type=float, default=0.001, help="voxel false-positive rate of the calibrated threshold")
    p.add_argument("--first-seed", type=int, default=100, help="seed of the first lesion draw")
    p.add_argument("--recommended", default="median_hu", help="map method given the +regions row")
    p.add_argument("--min-size-mm3", type=float, default=300.0, help="smallest mask region of the +regions row, mm3")
    p.add_argument("--select", action="store_true",
                   help="the selection run: calibrate on the training slab and insert the lesions into the "
                        "calibration slab (use with --first-seed 0), never the test slab")
    p.add_argument("--grow", type=float, default=0.5, help="mask growth of the +grow row (fraction of the peak)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip", nargs="*", default=[], choices=["restorer", "ae", "vae"], help="nets not to train")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    baseline_minutes = args.minutes if args.baseline_minutes is None else args.baseline_minutes

    import slicerio

    from medgan.anomaly import CalibratedMapper, MapConfig, body_mask, calibrate
    from medgan.anomaly.intensity import IntensityOutlier
    from medgan.anomaly.pipeline import voxel_residual
    from medgan.io import read_volume, write_volume
    from medgan.transforms.lesions import RandSyntheticLesions

    chest = read_volume(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd")
    train_vol, cal_vol, test_vol = slab(chest, 0, 12), slab(chest, 12, 23), slab(chest, 23, 34)
    if args.select:  # how the defaults were chosen: calibrate on the training slab, lesions in the calibration slab
        cal_vol, test_vol = train_vol, cal_vol
    cal_body, test_body = body_mask(cal_vol), body_mask(test_vol)

    work = Path(tempfile.mkdtemp(prefix="bench_anomaly_"))
    write_volume(train_vol, work / "data" / "train" / "target" / "slab0.nii.gz")
    cal_file = write_volume(cal_vol, work / "data" / "val" / "target" / "slab1.nii.gz")
    small = ["data.patch_size=[64,64]", "data.batch_size=8"]
    packages, train_info = {}, {}
    for name, config, minutes, extra in (("restorer", "configs/anomaly.yaml", args.minutes, []),
                                         ("ae", "configs/anomaly_ae.yaml", baseline_minutes, small),
                                         ("vae", "configs/anomaly_vae.yaml", baseline_minutes, small)):
        if name in args.skip:
            continue
        packages[name], seconds = train_package(config, minutes, work / "data", work / f"run_{name}", extra)
        train_info[name] = seconds
        print(f"trained {name} ({config}) for {seconds:.0f} s", flush=True)

    # every method: (label, model, map settings, min_size_mm3), calibrated as `medgan-anomaly calibrate` does
    methods = [("median_hu", None, MapConfig(), 0.0, 0.0),
               ("median_hu body", None, MapConfig(region="body"), 0.0, 0.0),
               ("median_hu voxels", None, MapConfig(open_mm=0.0), 0.0, 0.0),
               ("median_hu bright", None, MapConfig(polarity="bright"), 0.0, 0.0),
               ("median soft", None, MapConfig(method="median"), 0.0, 0.0),
               ("median body (old default)", None, MapConfig(method="median", region="body"), 0.0, 0.0)]
    if "restorer" in packages:
        methods += [(f"restorer {m}", packages["restorer"], MapConfig(method=m), 0.0, 0.0)
                    for m in ("residual", "tissue", "combined")]
    methods += [(name, packages[name], MapConfig(method="residual"), 0.0, 0.0) for name in ("ae", "vae")
                if name in packages]
    rec = next(m for m in methods if m[0] in (args.recommended, f"restorer {args.recommended}"))
    methods += [(f"{rec[0]} +grow", rec[1], rec[2], 0.0, args.grow),
                (f"{rec[0]} +regions", rec[1], rec[2], args.min_size_mm3, 0.0)]
    mappers, thresholds, seconds_cal = {}, {}, {}
    for label, model, config, min_size, grow_by in methods:
        t0 = time.perf_counter()
        found = calibrate(model, cal_file, fpr=args.fpr, map_config=config, min_size_mm3=min_size, grow=grow_by,
                          progress=False)
        seconds_cal[label] = time.perf_counter() - t0
        thresholds[label] = found
        mappers[label] = CalibratedMapper(model, found.map_config, found.map_state, progress=False)
    intensity = IntensityOutlier().fit([cal_vol], [cal_body])
    cal_map = intensity(cal_vol, cal_body)[0].numpy()
    intensity_threshold = float(np.quantile(cal_map[cal_body], 1.0 - args.fpr))
    print("calibrated: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds_cal.items()), flush=True)

    hu = test_vol.as_tensor()[0].numpy()
    soft = test_body & (hu > -80) & (hu < 120)
    rows, timing = [], {}
    for contrast in CONTRASTS:
        pooled: dict[str, list] = {}
        bodies: dict[str, list] = {}
        residuals: dict[str, list] = {}
        truths = []
        for draw in range(args.draws):
            volume, mask = RandSyntheticLesions(count=args.lesions, radius_mm=(2.5, 7.5), contrast_hu=contrast,
                                                seed=args.first_seed + draw)(test_vol, region=soft)
            truths.append(mask[0].numpy().astype(bool))
            t0 = time.perf_counter()
            pooled.setdefault("intensity", []).append(intensity(volume, test_body)[0].numpy())
            timing.setdefault("intensity", []).append(time.perf_counter() - t0)
            bodies.setdefault("intensity", []).append(test_body)
            residuals.setdefault("intensity", []).append(np.zeros_like(hu))
            for label, mapper in mappers.items():
                t0 = time.perf_counter()
                found = mapper(volume)
                timing.setdefault(label, []).append(time.perf_counter() - t0)
                pooled.setdefault(label, []).append(found.map[0].numpy())
                bodies.setdefault(label, []).append(found.body[0].numpy())
                residuals.setdefault(label, []).append(voxel_residual(volume, found, mapper.config)[0].numpy())
        for label, maps in pooled.items():
            cal = thresholds.get(label)
            threshold = intensity_threshold if cal is None else cal.voxel_hu
            rows.append((contrast, label, metrics(maps, truths, bodies[label], residuals[label], threshold,
                                                  0.0 if cal is None else cal.min_size_mm3,
                                                  0.0 if cal is None else cal.grow, test_vol.affine)))
        fraction = np.mean([t[test_body].mean() for t in truths])
        print(f"+{contrast:.0f} HU done (lesion fraction of body voxels {fraction:.4f})", flush=True)

    print("\ntraining wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in train_info.items())
          + f"; {args.threads} thread(s); {args.draws} draws x {args.lesions} lesions (seeds from {args.first_seed}); "
          f"Dice@cal at fpr {args.fpr}; +grow: masks grown to {args.grow} of the peak; +regions: >= {args.min_size_mm3} mm3")
    print("| contrast | method | voxel AUROC | AUPRC | best Dice | Dice@cal | slice AUROC | s/scan |")
    print("|---|---|---|---|---|---|---|---|")
    for contrast, name, m in rows:
        print(f"| +{contrast:.0f} | {name} | {m['auroc']:.4f} | {m['auprc']:.4f} | {m['best_dice']:.3f} | "
              f"{m['dice_cal']:.3f} | {m['slice_auroc']:.3f} | {np.median(timing[name]):.2f} |")


if __name__ == "__main__":
    main()
