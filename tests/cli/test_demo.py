import pytest
import torch

from medgan.cli.demo import MARKER, _prepare_output, _write_slabs
from medgan.errors import OutputExistsError
from medgan.io import read_volume


def test_slabs_tile_the_scan_and_keep_world_positions(tmp_path, ct_chest_path):
    paths = _write_slabs(ct_chest_path, tmp_path / "scans")
    full = read_volume(ct_chest_path)
    slabs = [read_volume(p) for p in paths]
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
