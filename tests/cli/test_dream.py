import numpy as np
import torch

from medgan.cli.dream import main
from medgan.io import read_volume
from tests.synthesis._packages import save_package

AE = {"type": "ae_conv", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [4, 8],
      "strides": [2, 2]}


def test_dream_on_a_scan_writes_png_and_hu_nrrd_with_the_slice_geometry(tmp_path, ct_chest_path, capsys):
    pkg = save_package(tmp_path / "ae", AE, recipe="dae")
    out = tmp_path / "dream.png"
    assert main(["--model", str(pkg), "--layer", "generator.encode", "--input", str(ct_chest_path), "--output",
                 str(out), "--octaves", "2", "--steps", "4", "--slice", "20", "--window", "chest"]) == 0
    printed = capsys.readouterr().out
    before, after = (float(v) for v in printed.split("activation ")[1].split(";")[0].split(" -> "))
    assert after > before
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dreamed = read_volume(tmp_path / "dream.nrrd")
    scan = read_volume(ct_chest_path)
    assert dreamed.shape == (1, 128, 128, 1)
    expected = scan.affine.clone()
    expected[:3, 3] += 20 * scan.affine[:3, 2]
    assert torch.allclose(dreamed.affine.double(), expected.double(), atol=1e-3)
    diff = (dreamed[0, ..., 0] - scan[0, ..., 20].clamp(-1024, 1024)).abs()
    assert 0 < float(diff.mean()) < 300  # changed, but still the chest
    assert main(["--model", str(pkg), "--layer", "generator.encode", "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_list_layers_and_user_errors(tmp_path, capsys):
    pkg = save_package(tmp_path / "ae", AE, recipe="dae")
    assert main(["--model", str(pkg), "--list-layers"]) == 0
    listing = capsys.readouterr().out
    assert "generator.encode" in listing and "1x8x4x4" in listing  # a 16 px patch through two stride-2 convs
    for extra, message in [(["--layer", "generator.encod"], "did you mean generator.encode"),
                           (["--layer", "generator.encode", "--steps", "0"], "--steps: got 0"),
                           (["--layer", "generator.encode", "--input", str(tmp_path / "no.nrrd")], "no.nrrd")]:
        assert main(["--model", str(pkg), "--output", str(tmp_path / "x.png"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert main(["--model", str(pkg)]) == 2
    assert not (tmp_path / "x.png").exists() and not np.any([p.suffix == ".nrrd" for p in tmp_path.iterdir()])
