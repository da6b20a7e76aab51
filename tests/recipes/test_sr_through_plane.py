"""Thick -> thin slices end to end: ``medgan-prepare sr --scale 1 --slice-scale 4``, a 3D ``srresnet`` with
``scale: [1, 1, 4]`` trained by the srgan recipe, and ``medgan-infer`` writing the thin-slice volume on the
original thin grid (spacing and origin)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor

from medgan.cli.infer import main as infer_main
from medgan.cli.prepare import main as prepare_main
from medgan.config import validate_config
from medgan.engine import train
from medgan.inference import Predictor
from medgan.io import read_volume

from ._configs import tiny_config


def _generator(scale: list[int]) -> dict:
    return {"type": "srresnet", "feature_size": 4, "num_res_blocks": 1, "scale": scale, "consistency": True,
            "norm": "none"}


def _prepare(tmp_path, ct_chest_path, scale: int):
    """Two 24 x 24 x 16 chest crops (3 mm pixels, 2.5 mm slices), prepared by the CLI into 10 mm slices."""
    scans = tmp_path / "scans"
    scans.mkdir()
    image = sitk.ReadImage(str(ct_chest_path))
    for k, name in enumerate(("P1_a", "P2_a")):
        sitk.WriteImage(image[40:64, 48:72, 16 * k:16 * k + 16], str(scans / f"{name}.nrrd"))
    root = tmp_path / "ds"
    code = prepare_main(["sr", "--input", str(scans), "--output", str(root), "--scale", str(scale),
                         "--slice-scale", "4", "--split", "0.5,0.5,0", "--no-progress"])
    assert code == 0
    return scans, root


@pytest.fixture
def thick_thin(tmp_path, ct_chest_path):
    return _prepare(tmp_path, ct_chest_path, 1)


def test_prepare_cli_writes_thick_slices_at_the_mean_position(thick_thin):
    scans, root = thick_thin
    thin = sitk.ReadImage(str(scans / "P2_a.nrrd"))
    thick = sitk.ReadImage(str(root / "val" / "source" / "P2_a.nrrd"))
    assert thick.GetSize() == (24, 24, 4)
    assert thick.GetSpacing()[:2] == pytest.approx(thin.GetSpacing()[:2])
    assert thick.GetSpacing()[2] == pytest.approx(4 * thin.GetSpacing()[2])
    z0 = np.mean([thin.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(4)])
    assert thick.GetOrigin()[2] == pytest.approx(z0) and thick.GetOrigin()[:2] == pytest.approx(thin.GetOrigin()[:2])
    hr, lr = sitk.GetArrayFromImage(thin).astype(np.float64), sitk.GetArrayFromImage(thick)
    np.testing.assert_allclose(lr[2, 5, 7], hr[8:12, 5, 7].mean(), atol=0.51)  # box profile, int16 rounding


def test_prepare_cli_refuses_a_bad_slice_scale(tmp_path, ct_chest_path, capsys):
    code = prepare_main(["sr", "--input", str(ct_chest_path.parent), "--output", str(tmp_path / "ds"),
                         "--scale", "2", "--slice-scale", "0", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--slice-scale" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("scale", "mode", "match"), [
    ([1, 1, 4], "2d", "input_mode '3d'"),     # a 2D net has no through-plane axis
    ([2, 2, 4], "3d", "data.scale=1"),        # in-plane factors must be data.scale
    ([1, 1, 1], "3d", ">= 2"),                # nothing to super-resolve
])
def test_per_axis_scale_checks(tmp_path, scale, mode, match):
    raw = tiny_config("srgan", tmp_path / "run", nets={"generator": _generator(scale)},
                      data={"root": str(tmp_path), "scale": 1, "input_mode": mode,
                            "patch_size": [8, 8, 4] if mode == "3d" else [8, 8]})
    with pytest.raises(ValueError, match=match):
        validate_config(raw)


@pytest.mark.slow
def test_through_plane_model_infers_the_thin_volume_on_the_thin_grid(tmp_path, thick_thin):
    scans, root = thick_thin
    raw = tiny_config("srgan", tmp_path / "run", trainer={"max_steps": 2},
                      recipe={"adv_weight": 0.0, "feature_weight": 0.0, "ema_decay": 0.9},
                      nets={"generator": _generator([1, 1, 4])},
                      data={"root": str(root), "scale": 1, "input_mode": "3d", "patch_size": [8, 8, 4]})
    train(validate_config(raw))
    out = tmp_path / "thin"
    code = infer_main(["--model", str(tmp_path / "run" / "model"), "--input", str(root / "val" / "source"),
                       "--output", str(out), "--roi-size", "full", "--no-progress"])
    assert code == 0
    thin, pred = sitk.ReadImage(str(scans / "P2_a.nrrd")), sitk.ReadImage(str(out / "P2_a.nrrd"))
    assert pred.GetSize() == thin.GetSize()
    assert pred.GetSpacing() == pytest.approx(thin.GetSpacing(), abs=1e-4)
    assert pred.GetOrigin() == pytest.approx(thin.GetOrigin(), abs=1e-4)
    # consistency: the mean of every 4 output slices is the thick input slice (HU, int16 files)
    thick = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "val" / "source" / "P2_a.nrrd"))).astype(np.float64)
    blocks = sitk.GetArrayFromImage(pred).astype(np.float64).reshape(4, 4, 24, 24).mean(1)
    np.testing.assert_allclose(blocks, np.maximum(thick, -1024), atol=1.0)


@pytest.mark.slow
def test_thick_to_thin_and_in_plane_at_once(tmp_path, ct_chest_path):
    """``scale: [2, 2, 4]``: 6 x 6 mm pixels of 10 mm slices -> the original 3 x 3 x 2.5 mm grid."""
    scans, root = _prepare(tmp_path, ct_chest_path, 2)
    raw = tiny_config("srgan", tmp_path / "run", trainer={"max_steps": 2},
                      recipe={"adv_weight": 0.0, "feature_weight": 0.0, "ema_decay": 0.9},
                      nets={"generator": _generator([2, 2, 4])},
                      data={"root": str(root), "input_mode": "3d", "patch_size": [8, 8, 4]})
    train(validate_config(raw))
    low = read_volume(root / "val" / "source" / "P2_a.nrrd")
    out = Predictor(tmp_path / "run" / "model", roi_size="full").predict(low)
    thin = read_volume(scans / "P2_a.nrrd")
    assert tuple(out.shape) == (1, 24, 24, 16)
    assert torch.allclose(torch.as_tensor(out.affine), torch.as_tensor(thin.affine), atol=1e-4)
    blocks = torch.nn.functional.avg_pool3d(out[None].float(), (2, 2, 4))[0]
    assert torch.allclose(blocks, MetaTensor(low).float().clamp(min=-1024), atol=1.0)
