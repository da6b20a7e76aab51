"""Does a briefly trained cGAN draw the class it is asked for? The done-when check of the synthesis work.

Two visibly different classes of real CT patches are cut from slicerio's chest CT (CTChest4, 128x128x34,
3 mm pixels): ``lung`` (>= 90 % of voxels below -500 HU, none at or below -1000 HU, so no air outside the
body and no field-of-view fill; under 30 % below -950 HU, which keeps out the air around the table) and ``soft_tissue`` (>= 90 % in [-150, 250] HU).
Slices 0-23 train, slices 24-33 are held out. The whole user path runs: ``medgan-train`` (configs/synth_cgan
with small nets) on a dataset folder whose labels come from ``labels.csv``, then ``medgan-sample --class``
for each class. A small CNN trained on the real training patches then classifies (a) held-out real
patches (its own accuracy) and (b) the samples; the table gives the fraction assigned to the class that
was requested (chance: 0.5). An unconditional baseline beside it: the same classifier on samples of the
*other* class request (what a generator that ignored the label would score on average is 0.5).

    .venv/bin/python scripts/bench_synthesis.py --out /tmp/synth_bench --steps 1500

Prints a table; writes the contact sheets under OUT/samples_<class>/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

CLASSES = ("lung", "soft_tissue")
PATCH = 16


def real_patches(path: Path, stride: int = 4) -> dict[str, list[tuple[int, np.ndarray]]]:
    """``{class: [(slice, (16, 16) HU patch), ...]}`` from the chest CT."""
    from medgan.io import read_volume

    volume = read_volume(path)[0].numpy()
    out: dict[str, list[tuple[int, np.ndarray]]] = {c: [] for c in CLASSES}
    for z in range(volume.shape[2]):
        for x in range(0, volume.shape[0] - PATCH + 1, stride):
            for y in range(0, volume.shape[1] - PATCH + 1, stride):
                patch = volume[x:x + PATCH, y:y + PATCH, z]
                # lung: inside the body (no air at -1000 or the -3024 field-of-view fill), mostly parenchyma
                if patch.min() > -1000 and np.mean(patch < -950) < 0.3 and np.mean(patch < -500) >= 0.9:
                    out["lung"].append((z, patch))
                elif np.mean((patch > -150) & (patch < 250)) >= 0.9:
                    out["soft_tissue"].append((z, patch))
    return out


def write_dataset(root: Path, patches: dict[str, list[tuple[int, np.ndarray]]], held_out_from: int,
                  chunk: int = 64) -> None:
    """``root/{train,val}/target/<class>_<split>_<k>.nrrd``: stacks of ``chunk`` patches of one class along z
    (small volumes keep each crop cheap); the class of every case in ``labels.csv``, and in dataset.json
    with one patient per class and split, so the patch sampler draws both classes equally often."""
    from monai.data import MetaTensor

    from medgan.io import write_volume

    rows, cases = ["case,class"], {}
    affine = torch.diag(torch.tensor([-3.047, -3.047, 10.0, 1.0], dtype=torch.float64))
    for split, keep in (("train", lambda z: z < held_out_from), ("val", lambda z: z >= held_out_from)):
        cases[split] = []
        for label, name in enumerate(CLASSES):
            chosen = [p for z, p in patches[name] if keep(z)]
            for k in range(0, len(chosen) if split == "train" else min(len(chosen), chunk), chunk):
                case = f"{name}_{split}_{k // chunk:03d}"
                stack = np.stack(chosen[k:k + chunk], axis=-1)
                write_volume(MetaTensor(torch.from_numpy(stack[None]).float(), affine=affine),
                             root / split / "target" / f"{case}.nrrd", overwrite=True)
                rows.append(f"{case},{name}")
                cases[split].append({"name": case, "patient": f"{name}_{split}", "label": label})
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    (root / "dataset.json").write_text(json.dumps({"manifest_version": 1, "task": "synth", "cases": cases}))


def real_sheet(patches: dict[str, list[tuple[int, np.ndarray]]], path: Path, per_class: int = 16) -> None:
    """A contact sheet of real training patches, classes alternating like medgan-sample's (no --class)."""
    from medgan.synthesis.sampling import save_contact_sheet

    train = {c: [p for z, p in v if z < 24] for c, v in patches.items()}
    picks = {c: v[:: max(1, len(v) // per_class)][:per_class] for c, v in train.items()}
    images = np.stack([picks[CLASSES[i % 2]][i // 2] for i in range(2 * per_class)])[:, None]
    save_contact_sheet(path, images, (-400.0 - 1000.0, -400.0 + 1000.0), [CLASSES[i % 2] for i in range(len(images))],
                       "real training patches (CTChest4, slices 0-23)")


class PatchClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def to_input(hu: np.ndarray) -> torch.Tensor:
    """HU patches ``(N, 16, 16)`` -> ``(N, 1, 16, 16)`` in [-1, 1] over [-1024, 1024] HU."""
    return torch.from_numpy(np.clip(hu, -1024, 1024) / 1024.0).float()[:, None]


def train_classifier(x: torch.Tensor, y: torch.Tensor, seed: int = 0, steps: int = 300) -> PatchClassifier:
    """``steps`` Adam steps on random minibatches of 64 (the same budget whatever the set's size)."""
    torch.manual_seed(seed)
    model = PatchClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        idx = torch.randint(len(x), (min(64, len(x)),))
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def accuracy(model: PatchClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def augmentation_rows(x_pool: torch.Tensor, y_pool: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                      model_dir: Path, per_class: tuple[int, ...] = (2, 8), ratio: float = 0.5,
                      seeds: tuple[int, ...] = (0, 1, 2)) -> list[tuple[str, float, float, int]]:
    """Held-out accuracy of the classifier trained on ``n`` real patches per class, alone and mixed with
    cGAN samples (``ratio`` of the training set) through :class:`SyntheticMixDataset`; mean over seeds."""
    from medgan.synthesis.mixing import SyntheticBank, SyntheticMixDataset, bank_size
    from medgan.synthesis.sampling import load_generative
    from medgan.transforms.intensity import HUNormalizer

    class Real(torch.utils.data.Dataset):
        def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
            self.x, self.y = x, y

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict:
            return {"target": self.x[i], "label": self.y[i], "case": f"real_{i}"}

    gen = load_generative(model_dir / "model")
    rows = []
    for n in per_class:
        real_acc, mixed_acc = [], []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            idx = np.concatenate([rng.choice(np.flatnonzero(y_pool.numpy() == c), n, replace=False) for c in (0, 1)])
            real = Real(x_pool[idx], y_pool[idx])
            real_acc.append(accuracy(train_classifier(real.x, real.y, seed), x_test, y_test))
            bank = SyntheticBank(gen, bank_size(len(real), ratio), seed=1000 + seed)
            mixed = SyntheticMixDataset(real, bank, HUNormalizer(hu_min=-1024, hu_max=1024), image_keys=("target",))
            items = [mixed[i] for i in range(len(mixed))]
            xm = torch.stack([it["target"] for it in items])
            ym = torch.stack([torch.as_tensor(it["label"]) for it in items])
            mixed_acc.append(accuracy(train_classifier(xm, ym, seed), x_test, y_test))
        rows.append((f"{n} real per class", float(np.mean(real_acc)), float(np.mean(mixed_acc)), len(seeds)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/synth_bench"))
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--n", type=int, default=64, help="samples per class")
    p.add_argument("--skip-train", action="store_true", help="reuse OUT/run/model")
    p.add_argument("--extra", nargs="*", default=[], help="more medgan-train overrides (e.g. the mode-collapse guards)")
    args = p.parse_args()
    import slicerio

    ct = Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"
    patches = real_patches(ct)
    root = args.out / "data"
    if root.exists():
        import shutil

        shutil.rmtree(root)
    write_dataset(root, patches, held_out_from=24)
    counts = {c: (sum(z < 24 for z, _ in v), sum(z >= 24 for z, _ in v)) for c, v in patches.items()}
    real_sheet(patches, args.out / "real_sheet.png")
    print(f"real patches (train, held out): {counts}")
    run = args.out / "run"
    if not args.skip_train:
        overrides = [f"data.root={root}", f"run.dir={run}", f"data.patch_size=[{PATCH},{PATCH}]", "data.batch_size=32",
                     "data.num_workers=0", "data.cache=memory", "data.normalization={type: window, hu_min: -1024, hu_max: 1024}",
                     "recipe.latent_size=32", f"recipe.class_names=[{','.join(CLASSES)}]", "nets.generator.feature_size=32", "nets.discriminator.feature_size=32",
                     f"trainer.max_steps={args.steps}", "trainer.accelerator=cpu", "trainer.devices=1",
                     f"trainer.val_check_interval={max(args.steps // 4, 1)}", "validation.diversity.samples=16",
                     f"run.checkpoint_every={args.steps}", "trainer.enable_progress_bar=false"]
        start = time.perf_counter()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a shared, busy machine: no oversubscription
        subprocess.run([sys.executable, "-m", "medgan.cli.train", "--config", "configs/synth_cgan.yaml", "--overwrite",
                        *overrides, *args.extra], check=True, env=env)
        print(f"medgan-train: {time.perf_counter() - start:.0f} s for {args.steps} iterations (shared 2-core machine)")

    def split(which: int, cap: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """Real patches of the training (0) or held-out (1) slices, at most ``cap`` per class (seeded)."""
        xs, ys = [], []
        rng = np.random.default_rng(which)
        for label, name in enumerate(CLASSES):
            chosen = [patch for z, patch in patches[name] if (z >= 24) == bool(which)]
            if len(chosen) > cap:
                chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), cap, replace=False))]
            xs.append(np.stack(chosen))
            ys += [label] * len(chosen)
        return to_input(np.concatenate(xs)), torch.tensor(ys)

    x_train, y_train = split(0)
    x_test, y_test = split(1)
    clf = train_classifier(x_train, y_train)
    real_acc = accuracy(clf, x_test, y_test)
    rows = [("real held-out patches", real_acc, len(y_test))]
    from medgan.figures import mean_pairwise_distance
    from medgan.io import read_volume

    for label, name in enumerate(CLASSES):
        out = args.out / f"samples_{name}"
        subprocess.run([sys.executable, "-m", "medgan.cli.sample", "--model", str(run / "model"), "--n", str(args.n),
                        "--class", name, "--seed", "0", "--output", str(out), "--overwrite", "--window=-400,1600"],
                       check=True)
        hu = np.stack([read_volume(f)[0, ..., 0].numpy() for f in sorted(out.glob("sample_*.nrrd"))])
        with torch.no_grad():
            pred = clf(to_input(hu)).argmax(1)
        rows.append((f"cGAN samples, --class {name}", float((pred == label).float().mean()), len(pred)))
        real = [p for z, p in patches[name] if z < 24]
        real = np.stack(real[:: max(1, len(real) // 64)][:64])
        spread = (mean_pairwise_distance(np.clip(hu, -1024, 1024) / 1024),
                  mean_pairwise_distance(np.clip(real, -1024, 1024) / 1024))
        rows.append((f"  (mean HU {hu.mean():.0f} vs real {real.mean():.0f}; within-class diversity "
                     f"{spread[0]:.3f} vs real {spread[1]:.3f})", float("nan"), len(pred)))
    print("\n| what the classifier sees | assigned to the requested class | n |\n|---|---|---|")
    for what, acc, n in rows:
        print(f"| {what} | {'' if acc != acc else f'{acc:.3f}'} | {n} |")
    print(f"\naugmentation: held-out accuracy (n={len(y_test)}), mean over seeds; mixed = real + cGAN samples (half)")
    print("| real training patches | real only | real + synthetic | seeds |\n|---|---|---|---|")
    for what, real_only, mixed, seeds in augmentation_rows(x_train, y_train, x_test, y_test, run):
        print(f"| {what} | {real_only:.3f} | {mixed:.3f} | {seeds} |")


if __name__ == "__main__":
    main()
