"""An untrained super-resolution package run by the inferer is B-spline up-sampling of the scan, whatever
fills the scanner put outside its field of view: the normaliser clips them before the net sees them."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from medgan.inference import Predictor
from medgan.nets import build_net
from medgan.nets.upsample import interpolate_up
from medgan.package import make_manifest

WINDOW = {"type": "window", "hu_min": -1024.0, "hu_max": 3071.0, "out_min": -1.0, "out_max": 1.0}


def _untrained_sr(spatial_dims: int = 2) -> tuple[dict, dict]:
    cfg = {"type": "srresnet", "spatial_dims": spatial_dims, "feature_size": 4, "num_res_blocks": 1, "scale": 2}
    net = build_net(cfg)
    manifest = make_manifest(recipe="test", nets={"generator": cfg}, infer_net="generator",
                             spatial_dims=spatial_dims, normalization=WINDOW, scale=2,
                             input_mode="3d" if spatial_dims == 3 else "2d", patch_size=[8] * spatial_dims)
    return manifest, {f"generator.{k}": v for k, v in net.state_dict().items()}


def _scan(fill: float) -> MetaTensor:
    torch.manual_seed(0)
    x, y = torch.meshgrid(torch.arange(24.0), torch.arange(20.0), indexing="ij")
    inside = ((x - 11.5) ** 2 + (y - 9.5) ** 2) < 9.0**2  # a circular field of view
    body = (torch.randn(24, 20, 3) * 40 + 40).clamp(-1000, 1500)
    hu = torch.where(inside[..., None], body, torch.full_like(body, fill))
    return MetaTensor(hu[None], affine=torch.diag(torch.tensor([0.5, 0.5, 2.0, 1.0], dtype=torch.float64)))


def test_untrained_package_is_interpolation_of_the_clipped_scan_for_any_fill() -> None:
    pred = Predictor(_untrained_sr(), batch_size=2)
    outputs = {fill: pred.predict(_scan(fill))[0] for fill in (-1024.0, -2048.0, -3024.0)}
    clipped = _scan(-1024.0)[0].clamp(-1024, 3071)
    expected = interpolate_up(clipped.permute(2, 0, 1)[:, None].float(), 2)[:, 0].permute(1, 2, 0)
    for out in outputs.values():
        assert out.shape == (48, 40, 3)
        assert torch.allclose(out, expected, atol=0.05)  # HU
    assert torch.equal(outputs[-3024.0], outputs[-1024.0])


def test_untrained_3d_package_is_interpolation() -> None:
    pred = Predictor(_untrained_sr(3), batch_size=1, roi_size="full")
    scan = _scan(-3024.0)[:, :, :, :]
    scan = MetaTensor(scan.as_tensor().repeat(1, 1, 1, 2), affine=scan.affine)  # 6 slices
    out = pred.predict(scan)[0]
    clipped = scan[0].as_tensor().clamp(-1024, 3071)
    assert torch.allclose(out, interpolate_up(clipped[None, None], 2)[0, 0], atol=0.05)


def test_onnx_backend_runs_the_interpolation_and_projection() -> None:
    pytest.importorskip("onnxruntime")
    cfg = {"type": "srresnet", "spatial_dims": 2, "feature_size": 4, "num_res_blocks": 1, "scale": 2, "consistency": True,
           "norm": "none"}
    net = build_net(cfg)
    torch.nn.init.normal_(net.tail.weight, std=0.1)  # a non-zero correction
    manifest = make_manifest(recipe="test", nets={"generator": cfg}, infer_net="generator", spatial_dims=2,
                             normalization=WINDOW, scale=2, patch_size=[8, 8])
    model = (manifest, {f"generator.{k}": v for k, v in net.state_dict().items()})
    scan = _scan(-3024.0)
    torch_out = Predictor(model).predict(scan)
    onnx_out = Predictor(model, backend="onnx").predict(scan)
    assert torch.allclose(torch_out, onnx_out, atol=0.05)  # HU


def test_untrained_shipped_config_is_bspline_then_block_mean_projection() -> None:
    """The untrained ``configs/sr.yaml`` net through the inferer is SciPy's cubic B-spline, projected so that
    every 2x2 block averages to its input pixel: the 'untrained net' row of scripts/bench_sr.py."""
    from pathlib import Path

    import numpy as np
    import yaml
    from scipy import ndimage

    raw = yaml.safe_load((Path(__file__).parents[2] / "configs" / "sr.yaml").read_text())
    cfg = {**raw["nets"]["generator"], "feature_size": 4, "num_res_blocks": 1, "scale": raw["data"]["scale"]}
    net = build_net(cfg)
    manifest = make_manifest(recipe="test", nets={"generator": cfg}, infer_net="generator", spatial_dims=2,
                             normalization=WINDOW, scale=2, patch_size=[8, 8])
    scan = _scan(-1024.0)
    out = Predictor((manifest, {f"generator.{k}": v for k, v in net.state_dict().items()})).predict(scan)[0]
    low = scan[0].as_tensor().numpy().astype(np.float64)
    spline = np.stack([ndimage.zoom(low[..., z], 2, order=3, mode="nearest", grid_mode=True)
                       for z in range(low.shape[-1])], -1)
    block_mean = spline.reshape(24, 2, 20, 2, -1).mean((1, 3))
    expected = spline - np.repeat(np.repeat(block_mean - low, 2, 0), 2, 1)
    # the scan's border is a constant fill, where SciPy's mirrored and medgan's repeated edges agree
    assert out.shape == expected.shape and np.allclose(out.numpy(), expected, atol=0.05)  # HU
