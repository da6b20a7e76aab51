import pytest
import torch

from medgan.cli.demo import MARKER, SLABS, _piles, _prepare_output, _write_slabs, table
from medgan.errors import OutputExistsError
from medgan.io import read_volume


def test_slabs_tile_the_scan_and_keep_world_positions(tmp_path, ct_chest_path):
    paths = _write_slabs(ct_chest_path, tmp_path / "scans")
    full = read_volume(ct_chest_path)
    slabs = [read_volume(p) for p in paths]
    assert len(slabs) == len(SLABS) == 4  # low-dose pile, full-dose pile, validation, test: four "patients"
    assert sum(s.shape[-1] for s in slabs) == full.shape[-1]
    start = 0
    for slab in slabs:
        depth = slab.shape[-1]
        assert torch.equal(slab.as_tensor(), full.as_tensor()[..., start:start + depth])
        # the slab's first voxel sits where that voxel sits in the whole scan
        expected = full.affine @ torch.tensor([0.0, 0.0, start, 1.0], dtype=full.affine.dtype)
        assert torch.allclose(slab.affine[:, 3], expected, atol=1e-4)
        start += depth


def test_demo_replaces_only_its_own_output(tmp_path):
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "precious.nii.gz").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="not written by medgan-demo"):
        _prepare_output(foreign)
    assert (foreign / "precious.nii.gz").exists()

    ours = tmp_path / "demo_out"
    _prepare_output(ours)
    (ours / "old_run.txt").write_text("stale")
    _prepare_output(ours)  # a second make demo starts afresh
    assert (ours / MARKER).exists() and not (ours / "old_run.txt").exists()


def test_demo_reads_the_mean_row_that_medgan_eval_wrote(tmp_path):
    from medgan.cli.demo import _mean_row
    from medgan.evaluation import CaseResult, results_csv

    results = [CaseResult("p1", 3, {"psnr": 30.0, "ssim": 0.9, "rmse": 10.0}, {"psnr": 20.0, "ssim": 0.8, "rmse": 30.0}),
               CaseResult("p2", 5, {"psnr": 32.0, "ssim": 0.7, "rmse": 20.0}, {"psnr": 22.0, "ssim": 0.6, "rmse": 50.0})]
    path = tmp_path / "eval.csv"
    path.write_text(results_csv(results))
    mean = _mean_row(path)
    assert mean == {"psnr": 31.0, "ssim": 0.8, "rmse": 15.0, "input_psnr": 21.0, "input_ssim": 0.7, "input_rmse": 40.0}


def test_the_two_piles_hold_different_patients_and_one_dose_each(tmp_path):
    ds = tmp_path / "ds"
    for role in ("source", "target"):
        (ds / "train" / role).mkdir(parents=True)
        for name in ("A_chest.nrrd", "C_chest.nrrd"):
            (ds / "train" / role / name).write_bytes(f"{role} {name}".encode())
    low, full = _piles(ds, tmp_path / "piles")
    assert [p.read_bytes() for p in low.iterdir()] == [b"source A_chest.nrrd"]  # low dose of patient A only
    assert [p.read_bytes() for p in full.iterdir()] == [b"target C_chest.nrrd"]  # full dose of patient C only


def test_result_table_puts_the_methods_side_by_side():
    text = table({"low dose (0.1)": {"rmse": 70.51, "psnr": 28.25, "ssim": 0.7953},
                  "CycleGAN (unpaired)": {"rmse": 60.0, "psnr": 29.6, "ssim": 0.81},
                  "supervised (ldct_redcnn)": {"rmse": 50.04, "psnr": 31.2, "ssim": 0.85}})
    lines = text.splitlines()
    assert lines[0].split() == ["RMSE", "HU", "PSNR", "dB", "SSIM"]
    assert lines[1].split()[-3:] == ["70.5", "28.25", "0.795"]
    assert lines[3].split()[-3:] == ["50.0", "31.20", "0.850"] and lines[3].strip().startswith("supervised")
