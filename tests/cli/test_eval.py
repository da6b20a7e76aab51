import numpy as np
import pytest
import SimpleITK as sitk

from medgan.cli.eval import main, parse_window


def _write(path, array_zyx):
    image = sitk.GetImageFromArray(array_zyx.astype(np.int16))
    image.SetSpacing((0.8, 0.7, 2.0))
    sitk.WriteImage(image, str(path))
    return str(path)


def test_named_and_numeric_windows():
    assert parse_window("chest") == (-1350.0, 150.0)
    assert parse_window("head") == (0.0, 80.0)
    assert parse_window("40,400") == (-160.0, 240.0)
    assert parse_window("soft_tissue") == (-160.0, 240.0)  # every name the training config knows


def test_cli_writes_csv_refuses_to_overwrite_and_reports_bad_window(tmp_path, capsys):
    phantom = np.full((2, 16, 16), -100, dtype=np.int16)
    target = _write(tmp_path / "t.nii.gz", phantom)
    pred = _write(tmp_path / "p.nii.gz", phantom + 5)
    out = tmp_path / "eval.csv"
    assert main(["--pred", pred, "--target", target, "--window", "abdomen", "--output", str(out)]) == 0
    rows = out.read_text().splitlines()
    assert rows[1].split(",")[4] == "5.0000" and rows[-1].startswith("mean,2,")
    assert "window [-150, 250] HU" in capsys.readouterr().out

    assert main(["--pred", pred, "--target", target, "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err

    assert main(["--pred", pred, "--target", target, "--window", "wide"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--window: got 'wide'" in err


@pytest.mark.parametrize("missing", ["pred", "target"])
def test_missing_scan_is_exit_2(tmp_path, capsys, missing):
    real = _write(tmp_path / "x.nii.gz", np.zeros((1, 8, 8)))
    args = {"pred": real, "target": real, missing: str(tmp_path / "nope.nii.gz")}
    assert main(["--pred", args["pred"], "--target", args["target"]]) == 2
    assert "nope.nii.gz" in capsys.readouterr().err


def _noisy_pair(tmp_path, sigma=40.0, shape=(3, 40, 40)):
    rng = np.random.default_rng(0)
    clean = np.full(shape, 40, dtype=np.int16)
    clean[:, 10:30, 12:28] = 200
    target = _write(tmp_path / "case1_full.nii.gz", clean)
    noisy = _write(tmp_path / "case1_low.nii.gz", clean + rng.normal(0, sigma, shape))
    return target, noisy


def test_baselines_need_input_and_known_names(tmp_path, capsys):
    target, noisy = _noisy_pair(tmp_path)
    assert main(["--target", target, "--baselines", "gaussian"]) == 2
    assert "give --input" in capsys.readouterr().err
    assert main(["--target", target, "--input", noisy, "--baselines", "median"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "allowed: a comma list of bm3d, nlm" in err


def test_missing_bm3d_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    import sys

    target, noisy = _noisy_pair(tmp_path)
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d -> ModuleNotFoundError
    assert main(["--target", target, "--input", noisy, "--baselines", "bm3d"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "medgan[baselines]"' in err


def test_output_folder_holds_tables_figures_and_report(tmp_path, capsys):
    import csv
    import json

    target, noisy = _noisy_pair(tmp_path)
    out = tmp_path / "eval"
    assert main(["--target", target, "--input", noisy, "--baselines", "gaussian,tv", "--window", "abdomen",
                 "--bm3d-sigma", "40", "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "s/slice" in printed and "noise sigma 40.0 HU" in printed
    slices = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(slices) == 3 * 3 and {r["method"] for r in slices} == {"input", "gaussian", "tv"}
    cases = list(csv.DictReader(open(out / "cases.csv")))
    assert [r["case"] for r in cases] == ["case1_full"] * 3 + ["mean"] * 3
    assert cases[0]["seconds_per_slice"] == "" and float(cases[1]["seconds_per_slice"]) > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["window"] == [-150.0, 250.0] and summary["noise_sigma_hu"] == {"case1_full": 40.0}
    assert summary["methods"]["gaussian"]["psnr"] > summary["methods"]["input"]["psnr"]
    assert summary["methods"]["input"]["seconds_per_slice"] is None
    assert (out / "panels" / "case1_full.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 2 and "<table>" in html and "gaussian" in html
    assert "None" not in html and "<td>n/a</td>" in html  # the input has no seconds: shown as n/a
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".eval")]  # no staging folder left

    single = tmp_path / "one.csv"  # a .csv output is one table, per case and method
    assert main(["--target", target, "--input", noisy, "--baselines", "gaussian", "--bm3d-sigma", "40",
                 "--output", str(single), "--no-progress"]) == 0
    assert single.read_text().splitlines()[0] == "case,method,slices,psnr,ssim,rmse,seconds_per_slice"


@pytest.mark.slow
def test_bm3d_improves_the_real_chest_ct_at_quarter_dose(ct_chest_path, tmp_path, capsys):
    """The wiring check on real CT: slicerio's chest at a simulated quarter dose (4 slices), classical
    baselines in the chest window; BM3D must beat the low-dose input in PSNR and SSIM."""
    import json

    import torch
    from monai.data import MetaTensor

    from medgan.io import read_volume, write_volume
    from medgan.transforms.lowdose import simulate_low_dose

    volume = read_volume(ct_chest_path)
    z0 = 15
    affine = volume.affine.clone()
    affine[:3, 3] = (volume.affine @ torch.tensor([0, 0, z0, 1.0], dtype=affine.dtype))[:3]
    full = volume.as_tensor()[..., z0:z0 + 4].clone()
    # 1e4 photons per ray: 20-30 HU of added noise on these 3 mm pixels, like a clinical quarter dose
    low = simulate_low_dose(full[0].permute(2, 0, 1), 0.25, photons=1e4, pixel_size_mm=float(abs(affine[0, 0])),
                            filter_name="ramp", seed=0).permute(1, 2, 0)[None]
    target = write_volume(MetaTensor(full, affine=affine), tmp_path / "chest_full.nrrd")
    noisy = write_volume(MetaTensor(low.clone(), affine=affine), tmp_path / "chest_low.nrrd")
    out = tmp_path / "eval"
    assert main(["--target", str(target), "--input", str(noisy), "--baselines", "bm3d,nlm,bilateral,tv",
                 "--window", "chest", "--output", str(out), "--no-progress"]) == 0
    print(capsys.readouterr().out)
    methods = json.loads((out / "summary.json").read_text())["methods"]
    assert methods["bm3d"]["psnr"] > methods["input"]["psnr"] + 0.3
    assert methods["bm3d"]["ssim"] > methods["input"]["ssim"]
    assert all(methods[m]["seconds_per_slice"] > 0 for m in ("bm3d", "nlm", "bilateral", "tv"))


def test_model_runs_through_the_inference_predictor_and_is_timed(tmp_path, capsys):
    """An identity package (rescnn_lite with a zero last conv) scores exactly as the input does."""
    import json

    import torch

    from medgan.nets import build_net
    from medgan.package import make_manifest, save_model_package

    cfg = {"type": "rescnn_lite", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "feature_size": 4,
           "num_layers": 2}
    net = build_net(cfg)
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    manifest = make_manifest(recipe="test", nets={"generator": cfg}, infer_net="generator", spatial_dims=2,
                             normalization={"type": "window", "hu_min": -1024.0, "hu_max": 3071.0,
                                            "out_min": -1.0, "out_max": 1.0})
    package = save_model_package(tmp_path / "model", {f"generator.{k}": v for k, v in net.state_dict().items()},
                                 manifest)
    target, noisy = _noisy_pair(tmp_path)
    out = tmp_path / "eval"
    assert main(["--target", target, "--input", noisy, "--model", str(package), "--device", "cpu",
                 "--output", str(out), "--no-progress"]) == 0
    methods = json.loads((out / "summary.json").read_text())["methods"]
    assert methods["model"]["psnr"] == pytest.approx(methods["input"]["psnr"], abs=0.01)
    assert methods["model"]["seconds_per_slice"] > 0
    assert "model" in capsys.readouterr().out
