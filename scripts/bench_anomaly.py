"""Anomaly detection on held-out real CT: every method in one table, same lesions, same budget.

slicerio's chest CT (128×128×34, 3.05×3.05×10 mm) is cut into three axial slabs: nets train on the first
(through ``medgan.engine.train`` with the shipped config and ``trainer.max_time``, as ``medgan-train``
does), calibration uses the second, lesions go into the third, which no method saw. Lesions are spheroids
of 5–15 mm diameter and +50 / +100 / +200 HU whose centres lie in soft tissue (-80..120 HU inside the
body); each draw places ``--lesions`` of them (seeded: the same places at every contrast).

Methods: ``intensity`` (negative log density of locally averaged HU among the calibration body voxels),
``ae`` / ``vae`` (configs/anomaly_ae.yaml, anomaly_vae.yaml: |scan - reconstruction|), ``restorer``
(configs/anomaly.yaml: |scan - restoration|), ``restorer/tissue`` (that residual divided by the residual
expected for the tissue on the calibration slab), ``restorer/tissue+intensity`` (sum of both maps'
``-log10`` exceedance rates on the calibration slab), and the same two for a net-free restoration
(``median/...``: the in-plane median over a 12 mm disc, :class:`medgan.anomaly.intensity.LocalMedianRestoration`).

Metrics, inside the body, pooled over draws: voxel AUROC, AUPRC (chance = lesion fraction), best Dice (best
threshold), Dice at the threshold calibrated at ``--fpr`` on the calibration slab, slice AUROC (axial
slices holding a lesion vs. not, top-k slice score; the test set is one scan, so slices stand in for
scans), seconds per scan (map of the 11-slice test slab; absolute times depend on the machine's load).

    .venv/bin/python scripts/bench_anomaly.py --minutes 10 [--baseline-minutes 10] [--draws 4] [--threads 2]
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


def metrics(maps: list[np.ndarray], truths: list[np.ndarray], bodies: list[np.ndarray], threshold: float) -> dict:
    from medgan.anomaly import ScoreConfig, auprc, auroc, best_dice, dice, slice_scores

    values = np.concatenate([m[b] for m, b in zip(maps, bodies)])
    labels = np.concatenate([t[b] for t, b in zip(truths, bodies)])
    slice_values, slice_labels = [], []
    for m, t, b in zip(maps, truths, bodies):
        slice_values.append(slice_scores(m, ScoreConfig(topk_mm3=6.0), b))  # plain arrays: 6 voxels ≈ 560 mm³
        slice_labels.append(t.any(axis=(0, 1)))
    return {"auroc": auroc(values, labels), "auprc": auprc(values, labels), "best_dice": best_dice(values, labels),
            "dice_cal": dice(values > threshold, labels),
            "slice_auroc": auroc(np.concatenate(slice_values), np.concatenate(slice_labels))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training wall time of configs/anomaly.yaml")
    p.add_argument("--baseline-minutes", type=float, default=None, help="AE and VAE training time (default: --minutes)")
    p.add_argument("--draws", type=int, default=4, help="lesion draws per contrast")
    p.add_argument("--lesions", type=int, default=6, help="lesions per draw")
    p.add_argument("--fpr", type=float, default=0.001, help="voxel false-positive rate of the calibrated threshold")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip", nargs="*", default=[], choices=["ae", "vae"], help="baselines not to train")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    baseline_minutes = args.minutes if args.baseline_minutes is None else args.baseline_minutes

    import slicerio

    from medgan.anomaly import AnomalyMapper, body_mask
    from medgan.anomaly.intensity import (
        IntensityOutlier,
        LocalMedianRestoration,
        TailCalibrator,
        TissueErrorNormaliser,
    )
    from medgan.io import read_volume, write_volume
    from medgan.transforms.lesions import RandSyntheticLesions

    chest = read_volume(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd")
    train_vol, cal_vol, test_vol = slab(chest, 0, 12), slab(chest, 12, 23), slab(chest, 23, 34)
    cal_body, test_body = body_mask(cal_vol), body_mask(test_vol)

    work = Path(tempfile.mkdtemp(prefix="bench_anomaly_"))
    write_volume(train_vol, work / "data" / "train" / "target" / "slab0.nii.gz")
    write_volume(cal_vol, work / "data" / "val" / "target" / "slab1.nii.gz")
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

    # calibration: every map of the normal calibration slab
    intensity = IntensityOutlier().fit([cal_vol], [cal_body])
    mappers = {name: AnomalyMapper(pkg, sigma_mm=1.0, progress=False) for name, pkg in packages.items()}
    tissue, tail_r, tail_i = TissueErrorNormaliser(), TailCalibrator(), TailCalibrator()
    cal_maps = {"intensity": intensity(cal_vol, cal_body)[0].numpy()}
    tail_i.add(cal_maps["intensity"], cal_body)
    median, median_tissue, tail_m = LocalMedianRestoration(), TissueErrorNormaliser(), TailCalibrator()
    residual, restored = median(cal_vol, cal_body)
    median_tissue.add(residual, restored, cal_body)
    cal_maps["median/tissue"] = median_tissue(residual, restored)[0].numpy()
    tail_m.add(cal_maps["median/tissue"], cal_body)
    cal_maps["median/tissue+intensity"] = (tail_m(cal_maps["median/tissue"], cal_body)
                                           + tail_i(cal_maps["intensity"], cal_body))[0].numpy()
    for name, mapper in mappers.items():
        res = mapper(cal_vol)
        cal_maps[name] = res.map[0].numpy()
        if name == "restorer":
            tissue.add(res.map, res.reconstruction, res.body)
            cal_maps["restorer/tissue"] = tissue(res.map, res.reconstruction)[0].numpy() * cal_body
            tail_r.add(cal_maps["restorer/tissue"], cal_body)
            cal_maps["restorer/tissue+intensity"] = (tail_r(cal_maps["restorer/tissue"], cal_body)
                                                     + tail_i(cal_maps["intensity"], cal_body))[0].numpy()
    thresholds = {name: float(np.quantile(m[cal_body], 1.0 - args.fpr)) for name, m in cal_maps.items()}

    def test_maps(volume) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        maps, secs = {}, {}
        t0 = time.perf_counter()
        maps["intensity"] = intensity(volume, test_body)[0].numpy()
        secs["intensity"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        maps["median/tissue"] = median_tissue(*median(volume, test_body))[0].numpy()
        secs["median/tissue"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        maps["median/tissue+intensity"] = (tail_m(maps["median/tissue"], test_body)
                                           + tail_i(maps["intensity"], test_body))[0].numpy()
        secs["median/tissue+intensity"] = secs["median/tissue"] + secs["intensity"] + time.perf_counter() - t0
        for name, mapper in mappers.items():
            t0 = time.perf_counter()
            res = mapper(volume)
            maps[name] = res.map[0].numpy()
            secs[name] = time.perf_counter() - t0
            if name == "restorer":
                t0 = time.perf_counter()
                maps["restorer/tissue"] = tissue(res.map, res.reconstruction)[0].numpy() * test_body
                secs["restorer/tissue"] = secs[name] + time.perf_counter() - t0
                t0 = time.perf_counter()
                maps["restorer/tissue+intensity"] = (tail_r(maps["restorer/tissue"], test_body)
                                                     + tail_i(maps["intensity"], test_body))[0].numpy()
                secs["restorer/tissue+intensity"] = (secs["restorer/tissue"] + secs["intensity"]
                                                     + time.perf_counter() - t0)
        return maps, secs

    hu = test_vol.as_tensor()[0].numpy()
    soft = test_body & (hu > -80) & (hu < 120)
    rows, timing = [], {}
    for contrast in CONTRASTS:
        pooled: dict[str, list] = {}
        truths = []
        for draw in range(args.draws):
            volume, mask = RandSyntheticLesions(count=args.lesions, radius_mm=(2.5, 7.5), contrast_hu=contrast,
                                                seed=draw)(test_vol, region=soft)
            truths.append(mask[0].numpy().astype(bool))
            maps, secs = test_maps(volume)
            for name, m in maps.items():
                pooled.setdefault(name, []).append(m)
                timing.setdefault(name, []).append(secs[name])
        for name, ms in pooled.items():
            rows.append((contrast, name, metrics(ms, truths, [test_body] * len(ms), thresholds[name])))
        fraction = np.mean([t[test_body].mean() for t in truths])
        print(f"+{contrast:.0f} HU done (lesion fraction of body voxels {fraction:.4f})", flush=True)

    print("\ntraining wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in train_info.items())
          + f"; {args.threads} thread(s); {args.draws} draws x {args.lesions} lesions; Dice@cal at fpr {args.fpr}")
    print("| contrast | method | voxel AUROC | AUPRC | best Dice | Dice@cal | slice AUROC | s/scan |")
    print("|---|---|---|---|---|---|---|---|")
    for contrast, name, m in rows:
        print(f"| +{contrast:.0f} | {name} | {m['auroc']:.3f} | {m['auprc']:.3f} | {m['best_dice']:.3f} | "
              f"{m['dice_cal']:.3f} | {m['slice_auroc']:.3f} | {np.median(timing[name]):.2f} |")


if __name__ == "__main__":
    main()
