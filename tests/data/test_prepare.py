"""Library side of medgan-prepare: naming, per-case seeds, target placement, volume simulation."""

from __future__ import annotations

import pytest
import SimpleITK as sitk
import torch

from medgan.data.prepare import case_seed, output_name, place_target, prepare_sr, simulate_volume
from medgan.errors import ConfigError
from medgan.io import read_volume
from tests.data.builders import write_case


def test_output_name_keeps_or_converts_the_format(tmp_path):
    folder = tmp_path / "L067"
    folder.mkdir()
    assert output_name("L067", folder, "same") == "L067"  # DICOM folder stays a folder
    assert output_name("a", tmp_path / "a.nii.gz", "same") == "a.nii.gz"
    assert output_name("a", tmp_path / "a.mhd", "same") == "a.mha"
    assert output_name("a", tmp_path / "a.nrrd", "nifti") == "a.nii.gz"


def test_case_seed_depends_on_seed_and_name_only():
    assert case_seed(0, "L067") == case_seed(0, "L067")
    assert len({case_seed(0, "L067"), case_seed(1, "L067"), case_seed(0, "L096")}) == 3


def test_mhd_target_becomes_a_single_mha(tmp_path, chest_crop):
    src = write_case(chest_crop, tmp_path / "in" / "a.mhd")
    assert (tmp_path / "in" / "a.raw").exists() or (tmp_path / "in" / "a.zraw").exists()
    dest = tmp_path / "out" / "a.mha"
    dest.parent.mkdir()
    place_target(src, dest, "same")
    back = sitk.ReadImage(str(dest))
    assert sitk.GetArrayFromImage(back).tolist() == sitk.GetArrayFromImage(chest_crop).tolist()
    assert back.GetSpacing() == pytest.approx(chest_crop.GetSpacing())


def test_simulate_volume_is_seeded_and_keeps_meta(tmp_path, chest_crop):
    volume = read_volume(write_case(chest_crop[:32, :32, :2], tmp_path / "v.nrrd"))
    a = simulate_volume(volume, 0.25, seed=3, views=30)
    b = simulate_volume(volume, 0.25, seed=3, views=30)
    c = simulate_volume(volume, 0.25, seed=4, views=30)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == volume.shape and torch.equal(a.affine, volume.affine)
    assert a.meta["filename_or_obj"] == volume.meta["filename_or_obj"]
    noise = (a - volume).std()
    assert (
        noise > 1 and (simulate_volume(volume, 0.1, seed=3, views=30) - volume).std() > noise
    )  # less dose, more noise


def test_prepare_and_simulate_share_one_path(tmp_path, chest_crop):
    """medgan-simulate and medgan-prepare ldct give the same bytes for the same scan, dose and seed."""
    from medgan.cli.simulate import main as simulate_main

    volume_path = write_case(chest_crop[:48, :48, :2], tmp_path / "in" / "case.nrrd")
    seed = case_seed(0, "case")
    out = tmp_path / "cli.nrrd"
    argv = ["--input", str(volume_path), "--output", str(out), "--dose", "0.25", "--views", "40"]
    assert simulate_main([*argv, "--seed", str(seed)]) == 0
    from medgan.data.prepare import prepare_ldct

    dataset = prepare_ldct(tmp_path / "in", tmp_path / "ds", 0.25, views=40, split=(1, 0, 0), progress=False)
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out))).tolist() == sitk.GetArrayFromImage(
        sitk.ReadImage(str(dataset / "train" / "source" / "case.nrrd"))
    ).tolist()


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"scale": 1}, "--scale"), ({"scale": 2, "slice_thickness_mm": 0}, "--slice-thickness")],
)
def test_sr_settings_are_checked_before_any_work(tmp_path, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        prepare_sr(tmp_path / "missing", tmp_path / "out", **kwargs)
