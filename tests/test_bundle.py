"""``medgan-export --bundle``: the MONAI bundle CLI reproduces ``medgan-infer`` on real CT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medgan.cli.export import main as export_main
from medgan.cli.infer import main as infer_main
from tests.inference.test_cli_export import _unet_package as _package


def test_monai_bundle_run_matches_medgan_infer(tmp_path, ct_chest_path, capsys):
    pkg = _package(tmp_path / "model")
    bundle = tmp_path / "bundle"
    assert export_main(["--model", str(pkg), "--bundle", str(bundle)]) == 0
    assert export_main(["--model", str(pkg), "--bundle", str(bundle)]) == 2  # no silent replacement
    assert "--overwrite" in capsys.readouterr().err
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["inputs"]["image"]["modality"] == "CT"
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    assert {"input_file", "output_dir"} <= set(config)
    assert sorted(p.name for p in (bundle / "models").iterdir()) == ["medgan.yaml", "model.safetensors"]
    assert not list((bundle / "models").glob("*.pt*"))  # nothing to unpickle

    scan = tmp_path / "scan.nrrd"
    sitk.WriteImage(sitk.ReadImage(str(ct_chest_path))[:72, :60, 10:13], str(scan))
    ref = tmp_path / "infer.nii.gz"
    assert infer_main(["--model", str(pkg), "--input", str(scan), "--output", str(ref), "--no-progress",
                       "--device", "cpu"]) == 0
    moved = tmp_path / "elsewhere" / "bundle"  # the bundle carries no absolute path: it can be moved
    moved.parent.mkdir()
    bundle.rename(moved)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(moved / "configs" / "inference.json"),
           "--meta_file", str(moved / "configs" / "metadata.json"), "--input_file", str(scan),
           "--output_dir", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = out / "scan.nii.gz"
    a = sitk.ReadImage(str(ref))
    b = sitk.ReadImage(str(result))
    assert b.GetPixelID() == sitk.sitkInt16  # HU stay int16
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
    diff = np.abs(sitk.GetArrayFromImage(a).astype(np.int32) - sitk.GetArrayFromImage(b).astype(np.int32))
    assert diff.mean() <= 2.0
    assert sitk.GetArrayFromImage(a).std() > 1  # the net does something


def test_bundle_of_a_missing_model_is_a_user_error(tmp_path, capsys):
    assert export_main(["--model", str(tmp_path / "nope"), "--bundle", str(tmp_path / "b")]) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "b").exists()
