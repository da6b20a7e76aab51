"""``medgan-export`` and the onnxruntime backend of ``medgan-infer``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import SimpleITK as sitk
import torch

from medgan.cli.export import main as export_main
from medgan.cli.infer import main as infer_main
from medgan.nets import build_net
from medgan.package import make_manifest, save_model_package

WINDOW = {"type": "window", "hu_min": -1024.0, "hu_max": 3071.0, "out_min": -1.0, "out_max": 1.0}


def _unet_package(folder: Path) -> Path:
    cfg = {"type": "unet_generator", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "feature_size": 4,
           "num_downs": 3}
    torch.manual_seed(0)
    net = build_net(cfg)
    manifest = make_manifest(recipe="pix2pix", nets={"generator": cfg}, infer_net="generator", spatial_dims=2,
                             normalization=WINDOW)
    return save_model_package(folder, {f"generator.{k}": v for k, v in net.state_dict().items()}, manifest)


def test_export_then_onnx_backend_matches_torch(tmp_path, ct_chest_path, capsys):
    pkg = _unet_package(tmp_path / "model")
    onnx_path = tmp_path / "model.onnx"
    assert export_main(["--model", str(pkg), "--onnx", str(onnx_path)]) == 0
    props = {p.key for p in onnx.load(str(onnx_path)).metadata_props}
    assert {"medgan_manifest", "medgan_size_multiple", "medgan_scales"} <= props
    # an existing file is not replaced without --overwrite
    assert export_main(["--model", str(pkg), "--onnx", str(onnx_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err

    scan = tmp_path / "scan.nrrd"
    sitk.WriteImage(sitk.ReadImage(str(ct_chest_path))[:72, :60, 10:13], str(scan))
    torch_out, onnx_out = tmp_path / "torch.nii.gz", tmp_path / "onnx.nii.gz"
    common = ["--input", str(scan), "--no-progress", "--roi-size", "32,32", "--overlap", "0.5"]
    assert infer_main(["--model", str(pkg), "--output", str(torch_out), *common]) == 0
    assert infer_main(["--model", str(onnx_path), "--backend", "onnx", "--output", str(onnx_out), *common]) == 0
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(torch_out))).astype(np.int32)
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(onnx_out))).astype(np.int32)
    # written as int16 HU: float differences (~1e-3 HU) can only flip a rounding, never more than 1 HU
    assert np.abs(a - b).max() <= 1
    assert (a != b).mean() < 1e-3
    assert a.std() > 1  # the net does something


def test_onnx_file_needs_onnx_backend_and_bad_files_are_user_errors(tmp_path, capsys):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    assert infer_main(["--model", str(bogus), "--input", str(tmp_path), "--output", str(tmp_path / "o.nrrd")]) == 2
    assert export_main(["--model", str(tmp_path / "missing"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and not (tmp_path / "x.onnx").exists()
