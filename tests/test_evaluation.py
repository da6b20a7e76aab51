import numpy as np
import pytest
import SimpleITK as sitk

from medgan.errors import InputError
from medgan.evaluation import evaluate_cases, results_csv, summarize

CHEST = (-1350.0, 150.0)


def _write(path, array_zyx, spacing=(0.8, 0.7, 2.0), origin=(10.0, -5.0, 3.0)):
    image = sitk.GetImageFromArray(array_zyx.astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def phantom():
    rng = np.random.default_rng(0)
    return rng.integers(-1000, 100, size=(3, 24, 20)).astype(np.int16)


def test_identical_scans_score_perfectly(tmp_path, phantom):
    a = _write(tmp_path / "a.nii.gz", phantom)
    b = _write(tmp_path / "b.nrrd", phantom)
    (result,) = evaluate_cases(a, b, CHEST, progress=False)
    assert result.slices == 3
    assert result.output["rmse"] == pytest.approx(0.0, abs=1e-6)
    assert result.output["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert result.output["psnr"] == pytest.approx(100.0)


def test_constant_offset_gives_that_rmse_and_input_is_scored_too(tmp_path, phantom):
    target = _write(tmp_path / "t.nii.gz", phantom)
    pred = _write(tmp_path / "p.nii.gz", phantom + 10)
    noisy = _write(tmp_path / "n.nii.gz", phantom + 40)
    (result,) = evaluate_cases(pred, target, CHEST, inputs=noisy, progress=False)
    assert result.output["rmse"] == pytest.approx(10.0, rel=1e-5)
    assert result.input["rmse"] == pytest.approx(40.0, rel=1e-5)
    # PSNR in the chest window scaled to [0, 1] as the benchmark does (width - 1 = 1499 HU per unit)
    assert result.output["psnr"] == pytest.approx(20 * np.log10(1499 / 10), abs=0.01)
    assert result.input["ssim"] < result.output["ssim"] < 1.0


def test_folders_are_matched_by_name_and_every_case_counts_equally(tmp_path, phantom):
    (tmp_path / "pred").mkdir()
    (tmp_path / "target").mkdir()
    long_case = np.concatenate([phantom] * 3)  # 9 slices, error 10 HU
    _write(tmp_path / "target" / "p1.nii.gz", long_case)
    _write(tmp_path / "pred" / "p1.nii.gz", long_case + 10)
    _write(tmp_path / "target" / "p2.nrrd", phantom)  # 3 slices, error 30 HU
    _write(tmp_path / "pred" / "p2.nii.gz", phantom + 30)
    results = evaluate_cases(tmp_path / "pred", tmp_path / "target", CHEST, progress=False)
    assert [r.case for r in results] == ["p1", "p2"]
    # mean over cases (20), not over slices ((9*10 + 3*30) / 12 = 15)
    assert summarize(results)["rmse"] == pytest.approx(20.0, rel=1e-5)
    rows = results_csv(results).splitlines()
    assert rows[0].startswith("case,slices,psnr,ssim,rmse")
    assert rows[-1].startswith("mean,12,") and rows[-1].endswith(",20.0000")


def test_unmatched_names_and_different_grids_are_refused(tmp_path, phantom):
    (tmp_path / "pred").mkdir()
    (tmp_path / "target").mkdir()
    _write(tmp_path / "pred" / "p1.nii.gz", phantom)
    _write(tmp_path / "target" / "p9.nii.gz", phantom)
    with pytest.raises(InputError, match=r"no target for \['p1'\]; no prediction for \['p9'\]"):
        evaluate_cases(tmp_path / "pred", tmp_path / "target", CHEST, progress=False)
    shifted = _write(tmp_path / "s.nii.gz", phantom, origin=(10.5, -5.0, 3.0))
    with pytest.raises(InputError, match="voxel grids differ by up to 0.5 mm"):
        evaluate_cases(shifted, tmp_path / "target" / "p9.nii.gz", CHEST, progress=False)
    cropped = _write(tmp_path / "c.nii.gz", phantom[:2])
    with pytest.raises(InputError, match="shapes differ"):
        evaluate_cases(cropped, tmp_path / "target" / "p9.nii.gz", CHEST, progress=False)


def test_max_slices_picks_evenly_spaced_slices_and_input_alone_is_matched_as_input(tmp_path, phantom):
    from medgan.evaluation import evaluate_methods, pick_slices

    assert pick_slices(5, None) == [0, 1, 2, 3, 4] and pick_slices(9, 3) == [0, 4, 8] and pick_slices(2, 3) == [0, 1]
    (tmp_path / "low").mkdir()
    (tmp_path / "full").mkdir()
    _write(tmp_path / "low" / "p1.nii.gz", np.concatenate([phantom] * 3) + 20)
    _write(tmp_path / "full" / "p1.nii.gz", np.concatenate([phantom] * 3))
    ev = evaluate_methods(tmp_path / "full", CHEST, inputs=tmp_path / "low", max_slices=3, progress=False)
    assert [s.slice for s in ev.scores] == [0, 4, 8] and ev.methods == ["input"]
    assert ev.summary()["input"]["rmse"] == pytest.approx(20.0, rel=1e-5)
    _write(tmp_path / "full" / "p2.nii.gz", phantom)
    with pytest.raises(InputError, match=r"no input for \['p2'\]"):
        evaluate_methods(tmp_path / "full", CHEST, inputs=tmp_path / "low", progress=False)
