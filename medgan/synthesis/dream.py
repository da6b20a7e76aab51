"""Deep Dream (Mordvintsev et al. 2015) for medgan's nets: gradient ascent on an input image to raise the
activation norm of one named layer, over octaves, with jitter and normalised steps.

Any net of a model can be dreamed on: from a package folder the nets it stores (a generator, an
autoencoder); from a training ``.ckpt`` every net of the recipe, discriminators included (the recipe is
rebuilt from the checkpoint's config, so each net gets the sizes the data dictated). Layers are named
``<role>.<module path>`` (``discriminator.stages.1``, ``generator.net.encode``); :func:`list_layers`
lists them with their output shapes.

Nets with a fixed input size (DCGAN discriminator, VAE, dense autoencoders) see the image as a batch of
``img_size`` tiles; fully convolutional nets see the whole image. Octave ``k`` of ``n`` is the image
down-scaled by ``octave_scale ** (n - 1 - k)``; the detail dreamed at one octave is up-scaled into the
next (the original recipe). The objective is the mean squared activation of the layer; each step moves
the image by ``lr`` times the gradient divided by its mean absolute value (normalised units), after
rolling the image by a random shift of up to ``jitter`` pixels (rolled back afterwards).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medgan.errors import ConfigError, ModelPackageError
from medgan.transforms.intensity import HUNormalizer, build_normalizer


@dataclass
class DreamNets:
    """The nets of a model, by role, with the manifest and normaliser."""

    manifest: dict[str, Any]
    nets: dict[str, nn.Module]
    normalizer: HUNormalizer
    net_configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def layer(self, name: str) -> tuple[str, nn.Module, nn.Module]:
        """``(role, net, module)`` of layer ``<role>.<path>`` (or a whole net by its role).

        Raises:
            ConfigError: unknown role or module path (listing the roles, or close module names).
        """
        role, _, path = name.partition(".")
        if role not in self.nets:
            raise ConfigError(f"--layer '{name}': no net '{role}' in this model; nets: {', '.join(self.nets)} "
                              "(a training .ckpt also holds the discriminators; --list-layers names every layer)")
        net = self.nets[role]
        modules = dict(net.named_modules())
        if path not in modules:
            import difflib

            close = difflib.get_close_matches(path, [m for m in modules if m], n=3)
            hint = f" (did you mean {', '.join(f'{role}.{c}' for c in close)}?)" if close else ""
            raise ConfigError(f"--layer '{name}': '{role}' has no module '{path}'{hint}; --list-layers names them")
        return role, net, modules[path]


def _dcgan_latent(net: nn.Module) -> bool:
    return hasattr(net, "latent_size") and not hasattr(net, "img_size") and hasattr(net, "num_classes")


def load_dream_nets(model: str | os.PathLike) -> DreamNets:
    """The nets of a package folder (its stored nets) or of a training ``.ckpt`` (all of the recipe's).

    Raises:
        ModelPackageError: unreadable model, or a checkpoint whose recipe cannot be rebuilt.
    """
    from medgan.inference.loading import build_net_with_weights
    from medgan.package import load_model_package

    path = Path(model)
    manifest, state = load_model_package(path)  # checks the manifest (and, for a .ckpt, that it loads safely)
    normalizer = build_normalizer(manifest["normalization"])
    if path.is_file() and path.suffix == ".ckpt":
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        config = (ckpt.get("hyper_parameters") or {}).get("config")
        if config is not None:
            from medgan.recipes import build_recipe

            try:
                recipe = build_recipe(config)
            except (ConfigError, KeyError, TypeError, ValueError) as err:
                raise ModelPackageError(f"{path}: its recipe cannot be rebuilt for dreaming: {err}") from err
            missing, unexpected = recipe.load_state_dict(ckpt["state_dict"], strict=False)
            roles = [r for r in recipe.net_configs if not any(k.startswith(f"{r}.") for k in missing)]
            nets = {r: getattr(recipe, r).eval() for r in roles}
            return DreamNets(manifest, nets, normalizer, {r: recipe.net_configs[r] for r in roles})
    nets, configs = {}, {}
    for role, cfg in manifest["nets"].items():
        prefix = f"{role}."
        weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        nets[role] = build_net_with_weights(dict(cfg), weights, role, path).eval()
        configs[role] = dict(cfg)
    return DreamNets(manifest, nets, normalizer, configs)


def _in_channels(net: nn.Module, cfg: dict[str, Any], manifest: dict[str, Any]) -> int:
    if "in_channels" in cfg:
        return int(cfg["in_channels"])
    if manifest.get("input_mode") == "2.5d":
        return 2 * int(manifest.get("context_slices", 1)) + 1
    return 1


def _tile_size(net: nn.Module) -> int | None:
    size = getattr(net, "img_size", None)
    if size is None:
        return None
    size = tuple(size) if isinstance(size, (tuple, list)) else (int(size),) * 2
    if len(set(size)) != 1:
        raise ConfigError(f"dreaming needs a square input size; the net takes {size}")
    return int(size[0])


def _forward_fn(net: nn.Module, label: int) -> Callable[[torch.Tensor], Any]:
    classes = int(getattr(net, "num_classes", 0) or 0)
    if classes:
        if not 0 <= label < classes:
            raise ConfigError(f"--label {label}: the net has {classes} classes (0..{classes - 1})")
        return lambda x: net(x, torch.full((len(x),), label, dtype=torch.long, device=x.device))
    return net


def _tiles(image: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """``(1, C, H, W)`` -> ``(N, C, size, size)`` tiles (the image padded by edge replication)."""
    h, w = image.shape[-2:]
    ph, pw = -h % size, -w % size
    padded = F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image
    c = image.shape[1]
    tiles = padded.unfold(2, size, size).unfold(3, size, size)  # (1, C, nh, nw, size, size)
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, size, size), (h, w)


def layer_objective(net: nn.Module, module: nn.Module, image: torch.Tensor, label: int = 0) -> torch.Tensor:
    """Mean squared activation of ``module`` when ``net`` sees ``image`` ``(1, C, H, W)`` normalised."""
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        from medgan.inference.loading import first_output

        captured.append(first_output(output))

    handle = module.register_forward_hook(hook)
    try:
        size = _tile_size(net)
        x = _tiles(image, size)[0] if size is not None else image
        _forward_fn(net, label)(x)
    finally:
        handle.remove()
    if not captured:
        raise ConfigError("the chosen layer did not run in the net's forward pass; pick another (--list-layers)")
    return captured[0].float().pow(2).mean()


@dataclass
class DreamResult:
    """The dreamed image ``(1, C, H, W)`` normalised and the objective before each step (all octaves)."""

    image: torch.Tensor
    history: list[float]
    octave_sizes: list[tuple[int, int]]


def dream(net: nn.Module, module: nn.Module, image: torch.Tensor, octaves: int = 4, steps: int = 20,
          lr: float = 0.01, jitter: int = 4, octave_scale: float = 1.4, label: int = 0,
          clamp: tuple[float, float] | None = (-1.0, 1.0), seed: int = 0) -> DreamResult:
    """Gradient ascent on ``image`` to raise ``module``'s mean squared activation inside ``net``.

    Args:
        image: ``(1, C, H, W)`` normalised (the net's input range).
        octaves: number of scales; the smallest is ``octave_scale ** (octaves - 1)`` times smaller.
        steps: ascent steps per octave.
        lr: step size in normalised units (the gradient is divided by its mean absolute value first).
        jitter: maximum random roll in pixels per step (0: none).
        label: class fed to conditional nets.
        clamp: keep the image in this normalised range (``None``: unbounded).
        seed: seed of the jitter shifts.
    """
    for name, value, low in (("octaves", octaves, 1), ("steps", steps, 1), ("jitter", jitter, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"--{name}: got {value!r}, expected an integer >= {low}")
    if not lr > 0 or not octave_scale > 1:
        raise ConfigError(f"--lr must be > 0 and octave_scale > 1; got lr={lr}, octave_scale={octave_scale}")
    rng = torch.Generator().manual_seed(seed)
    base = image.detach().float()
    h, w = base.shape[-2:]
    sizes = [(max(int(round(h / octave_scale**k)), 4), max(int(round(w / octave_scale**k)), 4))
             for k in reversed(range(octaves))]
    for p in net.parameters():
        p.requires_grad_(False)
    history: list[float] = []
    detail = torch.zeros_like(F.interpolate(base, size=sizes[0], mode="bilinear", align_corners=False))
    for size in sizes:
        scaled = F.interpolate(base, size=size, mode="bilinear", align_corners=False, antialias=True) \
            if size != (h, w) else base
        detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        x = (scaled + detail).clone()
        for _ in range(steps):
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=rng)) if jitter else (0, 0)
            x = torch.roll(x, (dy, dx), dims=(-2, -1)).requires_grad_(True)
            objective = layer_objective(net, module, x, label)
            history.append(float(objective.detach()))
            (grad,) = torch.autograd.grad(objective, x)
            with torch.no_grad():
                x = x + lr * grad / (grad.abs().mean() + 1e-12)
                if clamp is not None:
                    x = x.clamp(*clamp)
                x = torch.roll(x, (-dy, -dx), dims=(-2, -1))
        detail = (x - scaled).detach()
    return DreamResult(x.detach(), history, sizes)


def list_layers(nets: DreamNets, image: torch.Tensor | None = None, label: int = 0) -> list[tuple[str, str, str]]:
    """``(layer name, module type, output shape)`` of every module of every net (shape from one forward
    pass of ``image``, or a zero patch of the training size; ``?`` where it did not run)."""
    rows = []
    for role, net in nets.nets.items():
        shapes: dict[str, str] = {}
        handles = []
        for path, module in net.named_modules():
            def hook(_m: nn.Module, _i: Any, out: Any, path: str = path, shapes: dict[str, str] = shapes) -> None:
                from medgan.inference.loading import first_output

                try:
                    shapes.setdefault(path, "x".join(str(s) for s in first_output(out).shape))
                except TypeError:
                    shapes.setdefault(path, "?")
            handles.append(module.register_forward_hook(hook))
        try:
            if not _dcgan_latent(net):
                x = image if image is not None else probe_image(nets, role)
                with torch.no_grad():
                    _run(net, x, label)
        except (RuntimeError, ValueError, ConfigError):
            pass
        finally:
            for handle in handles:
                handle.remove()
        for path, module in net.named_modules():
            rows.append((f"{role}.{path}" if path else role, type(module).__name__, shapes.get(path, "?")))
    return rows


def _run(net: nn.Module, x: torch.Tensor, label: int) -> None:
    size = _tile_size(net)
    _forward_fn(net, label)(_tiles(x, size)[0] if size is not None else x)


def probe_image(nets: DreamNets, role: str) -> torch.Tensor:
    """A zero (mid-range) input ``(1, C, *patch)`` for net ``role``."""
    net = nets.nets[role]
    patch = nets.manifest.get("patch_size") or [64, 64]
    size = _tile_size(net)
    shape = [size, size] if size is not None else [int(p) for p in patch[:2]]
    return torch.zeros(1, _in_channels(net, nets.net_configs.get(role, {}), nets.manifest), *shape)


def input_image(source: str, nets: DreamNets, role: str, size: Sequence[int] | None = None,
                slice_index: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The start image ``(1, C, H, W)`` normalised and its HU slice's RAS affine (``None`` for noise).

    ``source`` is ``noise`` (uniform in the normalised range, the training patch size or ``size``) or a
    scan, of which slice ``slice_index`` (default: the centre) is used, with neighbours for 2.5D nets.
    """
    net = nets.nets[role]
    if _dcgan_latent(net):
        raise ConfigError(f"--layer: '{role}' is a noise-to-image generator (its input is a latent vector, not an "
                          "image); dream on a discriminator (from a training .ckpt) or an image-to-image net")
    channels = _in_channels(net, nets.net_configs.get(role, {}), nets.manifest)
    if source == "noise":
        shape = list(size) if size else [int(p) for p in (nets.manifest.get("patch_size") or [64, 64])[:2]]
        g = torch.Generator().manual_seed(seed)
        return torch.rand(1, channels, *shape, generator=g) * 2 - 1, None
    from medgan.io import read_volume

    volume = read_volume(source)
    depth = volume.shape[-1]
    z = depth // 2 if slice_index is None else slice_index
    if not 0 <= z < depth:
        raise ConfigError(f"--slice {z}: the scan has {depth} slices (0..{depth - 1})")
    context = (channels - 1) // 2
    zs = [min(max(z + k, 0), depth - 1) for k in range(-context, context + 1)]
    hu = volume[0][..., zs].permute(2, 0, 1).float()  # (C, X, Y)
    affine = torch.as_tensor(volume.affine, dtype=torch.float64).clone()
    affine[:3, 3] = affine[:3, 3] + z * affine[:3, 2]
    return nets.normalizer.forward(hu.as_tensor() if hasattr(hu, "as_tensor") else hu)[None], affine


def save_dream_figure(path: str | os.PathLike, before_hu: torch.Tensor, after_hu: torch.Tensor,
                      window: tuple[float, float], title: str = "") -> Path:
    """Input, dreamed image (both in ``window``) and dreamed - input (HU), side by side, written atomically.
    Images are ``(X, Y)``; rows show Y, as in the training panels."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from medgan.figures import save_figure

    diff = (after_hu - before_hu).numpy()
    limit = max(float(abs(diff).max()), 1.0)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    fig.subplots_adjust(wspace=0.45)  # room for each colour bar's "HU" label
    views = [(before_hu.numpy(), "input", "gray", *window), (after_hu.numpy(), "dreamed", "gray", *window),
             (diff, "dreamed - input", "RdBu_r", -limit, limit)]
    for ax, (view, name, cmap, low, high) in zip(axes, views):
        im = ax.imshow(view.T, cmap=cmap, vmin=low, vmax=high)
        ax.set_title(name)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="HU")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def run_dream(model: str | os.PathLike, layer: str, source: str, output: str | os.PathLike, octaves: int = 4,
              steps: int = 20, lr: float = 0.01, jitter: int = 4, label: int = 0, slice_index: int | None = None,
              window: tuple[float, float] | None = None, seed: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """Dream on ``layer`` of ``model`` from ``source`` (a scan or ``noise``); writes the figure ``output``
    (PNG) and the dreamed image in HU beside it (``<output stem>.nrrd``, int16, the slice's geometry).

    Returns:
        ``{"png", "nrrd", "objective_first", "objective_last", "history", "octave_sizes"}``.
    """
    from medgan.io import write_volume
    from medgan.io.atomic import check_output

    output = Path(output)
    if output.suffix.lower() != ".png":
        raise ConfigError(f"--output: got '{output}', expected a .png file (the NRRD is written beside it)")
    nrrd = output.with_suffix(".nrrd")
    for path in (output, nrrd):
        check_output(path, overwrite, [source] if source != "noise" else [])
    nets = load_dream_nets(model)
    role, net, module = nets.layer(layer)
    image, affine = input_image(source, nets, role, slice_index=slice_index, seed=seed)
    norm = nets.normalizer
    clamp = (norm.out_min, norm.out_max) if norm.type == "window" else None
    result = dream(net, module, image, octaves, steps, lr, jitter, label=label, clamp=clamp, seed=seed)
    centre = image.shape[1] // 2
    before = norm.inverse(image[0, centre]).float()
    after = norm.inverse(result.image[0, centre]).float()
    if affine is None:
        from medgan.synthesis.sampling import manifest_spacing, sample_affine

        affine = torch.from_numpy(sample_affine(manifest_spacing(nets.manifest, model)[0]))
    from monai.data import MetaTensor

    write_volume(MetaTensor(after[None, ..., None], affine=affine), nrrd, "nrrd", kind="ct", overwrite=overwrite)
    window = window or ((norm.hu_min, norm.hu_max) if norm.type == "window" else (-1000.0, 1000.0))
    save_dream_figure(output, before, after, window,
                      title=f"Deep Dream: {layer}, {octaves} octaves x {steps} steps, lr {lr:g}, jitter {jitter}")
    return {"png": str(output), "nrrd": str(nrrd), "objective_first": result.history[0],
            "objective_last": result.history[-1], "history": result.history, "octave_sizes": result.octave_sizes}
