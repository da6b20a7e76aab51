"""Sample a generative model package (DCGAN / cGAN generator, or a VAE decoding its prior) into HU images
with geometry, a contact sheet and the latent seed of every sample.

Every sample ``i`` is drawn from its own seed ``seed + i`` (``z = randn(latent_size)`` from a
``torch.Generator`` seeded with it), so one sample can be made again from its seed alone, whatever else
was drawn with it.

The pixel size written is the manifest's ``spacing_mm`` (the training data's, one value per spatial axis,
optionally a third for the slice thickness of 2D models). Packages without it get
:data:`ASSUMED_SPACING_MM` and the summary says so (``spacing_assumed: true``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.errors import ConfigError, ModelPackageError
from medgan.io.atomic import atomic_write, check_output, staged_output
from medgan.io.formats import DEFAULT_SUFFIX
from medgan.transforms.intensity import HUNormalizer, build_normalizer

#: the pixel size used when the package does not record the training data's
ASSUMED_SPACING_MM = 1.0
#: PNG samples hold ``HU + PNG_OFFSET_HU`` as unsigned 16-bit (air -1024 HU -> 0); never 8-bit
PNG_OFFSET_HU = 1024
#: what medgan-sample writes: volume formats with the endings of :mod:`medgan.io.formats`, or PNG tiles
SAMPLE_FORMATS = {**{fmt: DEFAULT_SUFFIX[fmt] for fmt in ("nrrd", "nifti")}, "png": ".png"}


@dataclass
class GenerativeModel:
    """A loaded generative package.

    Attributes:
        manifest: the package manifest.
        net: the generator (``gan``) or the VAE (``vae``), in eval mode.
        kind: ``"gan"`` or ``"vae"``.
        latent_size: length of z.
        class_names: one name per label (empty for unconditional models).
        normalizer: the training HU normalisation (its inverse maps outputs to HU).
        spacing_mm: voxel size per spatial axis written with the samples (3 values, x y z).
        spacing_assumed: whether ``spacing_mm`` is :data:`ASSUMED_SPACING_MM` because the package lacks it.
    """

    manifest: dict[str, Any]
    net: nn.Module
    kind: str
    latent_size: int
    class_names: list[str]
    normalizer: HUNormalizer
    spacing_mm: tuple[float, float, float]
    spacing_assumed: bool

    @property
    def spatial_dims(self) -> int:
        return int(self.manifest["spatial_dims"])

    def class_index(self, name: str) -> int:
        """The label of class ``name`` (a class name, or its index as text).

        Raises:
            ConfigError: an unconditional model, or an unknown class (the message lists the known ones).
        """
        if not self.class_names:
            raise ConfigError(f"--class: the '{self.manifest['recipe']}' model is unconditional (no classes); "
                              "leave --class out")
        if name in self.class_names:
            return self.class_names.index(name)
        if name.isdigit() and int(name) < len(self.class_names):
            return int(name)
        raise ConfigError(f"--class: unknown class '{name}'; known: {', '.join(self.class_names)}")

    def latents(self, seeds: Sequence[int]) -> torch.Tensor:
        """``(N, latent_size)`` standard-normal vectors, row ``i`` drawn from ``seeds[i]`` alone."""
        return torch.stack([torch.randn(self.latent_size, generator=torch.Generator().manual_seed(int(s)))
                            for s in seeds])

    @torch.no_grad()
    def sample(self, seeds: Sequence[int], labels: Sequence[int] | None = None, batch_size: int = 64) -> torch.Tensor:
        """Images ``(N, 1, *img_size)`` in HU for the latent ``seeds`` (and ``labels`` of a cGAN)."""
        device = next(self.net.parameters()).device
        z_all = self.latents(seeds)
        if self.class_names and labels is None:
            raise ValueError("a conditional model needs one label per seed")
        out = []
        for start in range(0, len(seeds), batch_size):
            z = z_all[start:start + batch_size].to(device)
            if self.kind == "vae":
                image = self.net.net.decode_forward(z, use_sigmoid=False)
            elif self.class_names:
                image = self.net(z, torch.as_tensor(labels[start:start + batch_size], dtype=torch.long, device=device))
            else:
                image = self.net(z)
            out.append(self.normalizer.inverse(image.float()).cpu())
        return torch.cat(out)


def manifest_spacing(manifest: dict[str, Any], where: Any) -> tuple[tuple[float, float, float], bool]:
    """``((x, y, z) mm, assumed)``: the manifest's ``spacing_mm``, or :data:`ASSUMED_SPACING_MM` (assumed)."""
    value = manifest.get("spacing_mm")
    if value is None:
        return (ASSUMED_SPACING_MM,) * 3, True
    dims = int(manifest["spatial_dims"])
    if (not isinstance(value, (list, tuple)) or len(value) not in (dims, 3)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)):
        raise ModelPackageError(f"{where}: manifest spacing_mm {value!r} must be {dims} or 3 positive numbers (mm)")
    values = [float(v) for v in value]
    if len(values) == 2:  # a 2D model: the one slice gets the in-plane size as its thickness
        values.append(values[0])
    return (values[0], values[1], values[2]), False


def _class_names(manifest: dict[str, Any], net_cfg: dict[str, Any], where: Any) -> list[str]:
    count = int(net_cfg.get("num_classes", 0) or 0)
    names = manifest.get("class_names")
    if names is None:
        return [str(i) for i in range(count)]
    if not isinstance(names, list) or len(names) != count or len({str(n) for n in names}) != count:
        raise ModelPackageError(f"{where}: manifest class_names {names!r} must be {count} distinct names "
                                f"(nets.{manifest['infer_net']}.num_classes)")
    return [str(n) for n in names]


def load_generative(model: str | os.PathLike, device: str = "cpu") -> GenerativeModel:
    """Load a package whose net generates from noise (``dcgan_generator``, ``vae``).

    Raises:
        ModelPackageError: unreadable package, or a net that maps images to images (named, with what works).
    """
    from medgan.inference.loading import build_net_with_weights
    from medgan.package import load_model_package

    manifest, state = load_model_package(model)
    where = Path(model)
    role = manifest["infer_net"]
    cfg = dict(manifest["nets"][role] or {})
    from medgan.nets import NETS

    # net types that make images from a latent vector, and how (``gan``: ``net(z, labels)``; ``vae``: decoder)
    generative = {name: NETS.tags(name)["samples"] for name in NETS.names() if "samples" in NETS.tags(name)}
    kind = generative.get(cfg.get("type"))
    if kind is None:
        raise ModelPackageError(
            f"{where}: the '{manifest['recipe']}' model runs a {cfg.get('type')}, which maps images to images; "
            f"medgan-sample needs a model that generates from noise ({', '.join(generative)}: recipe "
            "dcgan, cgan or vae)")
    prefix = f"{role}."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    net = build_net_with_weights(cfg, weights, role, where).to(device).eval()
    latent = int(net.latent_size if kind == "gan" else net.net.latent_size)
    spacing, assumed = manifest_spacing(manifest, where)
    classes = _class_names(manifest, cfg, where) if kind == "gan" else []
    return GenerativeModel(manifest, net, kind, latent, classes, build_normalizer(manifest["normalization"]),
                           spacing, assumed)


def sample_affine(spacing_mm: Sequence[float]) -> np.ndarray:
    """The RAS affine of a sample: an axial grid (LPS-identity directions, as most CT is stored) at the origin."""
    return np.diag([-float(spacing_mm[0]), -float(spacing_mm[1]), float(spacing_mm[2]), 1.0])


def png_bytes(image_hu: np.ndarray, spacing_mm: Sequence[float]) -> bytes:
    """A 2D ``(X, Y)`` HU image as a 16-bit grayscale PNG of ``HU + 1024`` (rows = Y), pixel size in pHYs."""
    from PIL import Image

    stored = np.clip(np.rint(image_hu) + PNG_OFFSET_HU, 0, 65535).astype(np.uint16)
    buffer = io.BytesIO()
    dpi = tuple(25.4 / float(s) for s in spacing_mm[:2])
    Image.fromarray(np.ascontiguousarray(stored.T)).save(buffer, format="PNG", dpi=dpi)
    return buffer.getvalue()


def save_contact_sheet(path: str | os.PathLike, images_hu: np.ndarray, window: tuple[float, float],
                       captions: Sequence[str] | None = None, title: str = "") -> Path:
    """A grid of 2D views (the centre slice of 3D samples) in an HU window, written atomically.

    Args:
        images_hu: ``(N, 1, X, Y[, Z])`` HU.
        window: ``(low, high)`` HU.
        captions: one short text per tile (e.g. the class), or ``None``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from medgan.figures import centre_slice, save_figure

    n = len(images_hu)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        view = centre_slice(images_hu[i][0]) if images_hu[i].ndim > 3 else images_hu[i][0]
        ax.imshow(view.T, cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest")
        if captions is not None:
            ax.text(1, 1, captions[i], color="yellow", fontsize=6, va="top", ha="left")
    height = 1.3 * rows + (0.4 if title else 0)
    fig.subplots_adjust(wspace=0.03, hspace=0.03, top=1 - (0.4 / height if title else 0.0))
    if title:
        fig.suptitle(title, fontsize=8)
    return save_figure(fig, path)


def write_samples(model: str | os.PathLike | GenerativeModel, output: str | os.PathLike, n: int,
                  class_name: str | None = None, seed: int | None = None, fmt: str = "nrrd",
                  window: tuple[float, float] | None = None, overwrite: bool = False,
                  device: str = "cpu") -> dict[str, Any]:
    """Draw ``n`` samples and write them into the folder ``output`` (made whole, or not at all).

    The folder holds ``sample_0000.<ext>`` ... (HU, int16 for NRRD/NIfTI, ``HU + 1024`` uint16 for PNG),
    ``contact_sheet.png``, ``samples.csv`` (file, class, latent seed per sample) and ``samples.json`` (the
    summary this returns).

    Args:
        model: package folder / ``.ckpt``, or a loaded :class:`GenerativeModel`.
        n: number of samples (>= 1).
        class_name: a cGAN class (name or index); ``None`` cycles through all classes.
        seed: base seed; sample ``i`` uses ``seed + i``. ``None`` draws one (recorded in the summary).
        fmt: ``nrrd``, ``nifti`` or ``png`` (2D models only).
        window: HU window of the contact sheet; default the normaliser's range.

    Raises:
        ConfigError: bad ``n``/``fmt``/class. OutputExistsError: ``output`` exists without ``overwrite``.
        ModelPackageError: not a generative package.
    """
    from medgan.io import write_volume

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--n: got {n!r}, expected an integer >= 1")
    if fmt not in SAMPLE_FORMATS:
        raise ConfigError(f"--format: got '{fmt}', allowed: {', '.join(SAMPLE_FORMATS)}")
    output = Path(output)
    check_output(output, overwrite)
    gen = model if isinstance(model, GenerativeModel) else load_generative(model, device)
    if fmt == "png" and gen.spatial_dims != 2:
        raise ConfigError("--format png: the model makes 3D volumes; use nrrd or nifti")
    base = secrets.randbelow(2**31) if seed is None else int(seed)
    seeds = [base + i for i in range(n)]
    if gen.class_names:
        labels = [gen.class_index(class_name)] * n if class_name is not None else [i % len(gen.class_names)
                                                                                     for i in range(n)]
    else:
        if class_name is not None:
            gen.class_index(class_name)  # raises: the model has no classes
        labels = None
    images = gen.sample(seeds, labels).numpy()
    norm = gen.normalizer
    window = window or ((norm.hu_min, norm.hu_max) if norm.type == "window" else (-1000.0, 1000.0))
    names = [gen.class_names[label] for label in labels] if labels is not None else None
    ext = SAMPLE_FORMATS[fmt]
    rows = []
    summary = {
        "model": str(model if not isinstance(model, GenerativeModel) else "(in memory)"),
        "recipe": gen.manifest["recipe"], "kind": gen.kind, "n": n, "seed": base, "format": fmt,
        "latent_size": gen.latent_size, "classes": gen.class_names, "spacing_mm": list(gen.spacing_mm),
        "spacing_assumed": gen.spacing_assumed, "window_hu": list(window),
        "latent": "z_i = torch.randn(latent_size, generator=torch.Generator().manual_seed(seed_i))",
    }
    if fmt == "png":
        summary["png_value"] = f"HU + {PNG_OFFSET_HU} as uint16"
    affine = sample_affine(gen.spacing_mm)
    with staged_output(output) as staged:
        staged.mkdir()
        for i, image in enumerate(images):
            name = f"sample_{i:04d}{ext}"
            volume = image if image.ndim == 4 else image[..., None]  # (1, X, Y) -> (1, X, Y, 1)
            if fmt == "png":
                atomic_write(staged / name, png_bytes(image[0], gen.spacing_mm))
            else:
                from monai.data import MetaTensor

                write_volume(MetaTensor(torch.from_numpy(volume), affine=torch.from_numpy(affine)), staged / name,
                             fmt, kind="ct")
            rows.append({"index": i, "file": name, "class": "" if names is None else names[i],
                         "label": "" if labels is None else labels[i], "seed": seeds[i]})
        title = f"{gen.manifest['recipe']} samples, seed {base}" + (f", class {class_name}" if class_name else "")
        save_contact_sheet(staged / "contact_sheet.png", images, window, names, title)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=["index", "file", "class", "label", "seed"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(staged / "samples.csv", text.getvalue())
        atomic_write(staged / "samples.json", json.dumps(summary, indent=2) + "\n")
    summary["output"] = str(output)
    return summary
