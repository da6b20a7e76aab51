import json

import numpy as np
import pytest
import torch

from medgan.errors import ConfigError, ModelPackageError
from medgan.io import read_volume
from medgan.synthesis.sampling import load_generative, write_samples
from tests.synthesis._packages import cgan_config, save_package


@pytest.fixture
def cgan_pkg(tmp_path):
    return save_package(tmp_path / "cgan", cgan_config(), class_names=["lung", "soft"], spacing_mm=[0.7, 0.8])


def test_samples_are_hu_with_the_training_pixel_size_and_seeds(cgan_pkg, tmp_path):
    summary = write_samples(cgan_pkg, tmp_path / "out", 5, seed=10)
    out = tmp_path / "out"
    files = sorted(p.name for p in out.iterdir())
    assert files == ["contact_sheet.png", *[f"sample_{i:04d}.nrrd" for i in range(5)], "samples.csv", "samples.json"]
    rows = [line.split(",") for line in (out / "samples.csv").read_text().splitlines()]
    assert rows[0] == ["index", "file", "class", "label", "seed"]
    assert [r[2] for r in rows[1:]] == ["lung", "soft", "lung", "soft", "lung"]  # no --class: classes cycle
    assert [int(r[4]) for r in rows[1:]] == [10, 11, 12, 13, 14]
    volume = read_volume(out / "sample_0002.nrrd")
    assert volume.shape == (1, 16, 16, 1)
    assert np.allclose(np.abs(np.diag(volume.affine.numpy())[:2]), [0.7, 0.8])
    assert summary["spacing_assumed"] is False and json.loads((out / "samples.json").read_text())["seed"] == 10
    # the HU the model gives: its tanh range maps into the normaliser's [-1024, 1024]
    gen = load_generative(cgan_pkg)
    expected = gen.sample([12], [0])[0, 0].numpy()
    assert np.abs(volume[0, ..., 0].numpy() - np.rint(expected)).max() <= 1
    assert float(volume.std()) > 0


def test_one_sample_is_redrawn_from_its_seed_alone(cgan_pkg, tmp_path):
    write_samples(cgan_pkg, tmp_path / "a", 4, class_name="soft", seed=100)
    write_samples(cgan_pkg, tmp_path / "b", 1, class_name="soft", seed=103)
    a = read_volume(tmp_path / "a" / "sample_0003.nrrd")
    b = read_volume(tmp_path / "b" / "sample_0000.nrrd")
    assert torch.equal(a, b)
    other = read_volume(tmp_path / "a" / "sample_0002.nrrd")
    assert not torch.equal(a, other)


def test_class_is_passed_to_the_generator(cgan_pkg):
    gen = load_generative(cgan_pkg)
    lung, soft = gen.sample([1, 2], [0, 0]), gen.sample([1, 2], [1, 1])
    assert not torch.allclose(lung, soft)
    assert gen.class_index("soft") == 1 and gen.class_index("0") == 0


def test_unknown_class_lists_the_known_ones(cgan_pkg, tmp_path):
    with pytest.raises(ConfigError, match="unknown class 'bone'; known: lung, soft"):
        write_samples(cgan_pkg, tmp_path / "o", 2, class_name="bone")
    assert not (tmp_path / "o").exists()


def test_missing_pixel_size_is_assumed_and_said(tmp_path):
    pkg = save_package(tmp_path / "dcgan", cgan_config(num_classes=0), recipe="dcgan")
    summary = write_samples(pkg, tmp_path / "o", 2, seed=0)
    assert summary["spacing_assumed"] is True and summary["classes"] == []
    assert np.allclose(np.abs(np.diag(read_volume(tmp_path / "o" / "sample_0000.nrrd").affine.numpy())[:3]), 1.0)
    with pytest.raises(ConfigError, match="unconditional"):
        write_samples(pkg, tmp_path / "o2", 2, class_name="0")


def test_vae_samples_its_prior(tmp_path):
    cfg = {"type": "vae", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "img_size": 16, "latent_size": 4,
           "channels": [4, 8], "strides": [2, 2]}
    pkg = save_package(tmp_path / "vae", cfg, recipe="vae")
    summary = write_samples(pkg, tmp_path / "o", 3, seed=1, fmt="nifti")
    assert summary["kind"] == "vae" and summary["latent_size"] == 4
    a, b = (read_volume(tmp_path / "o" / f"sample_000{i}.nii.gz") for i in (0, 1))
    assert a.shape == (1, 16, 16, 1) and not torch.equal(a, b)


def test_png_is_16_bit_hu_plus_1024(cgan_pkg, tmp_path):
    from PIL import Image

    write_samples(cgan_pkg, tmp_path / "o", 2, seed=3, fmt="png", class_name="lung")
    png = Image.open(tmp_path / "o" / "sample_0000.png")
    assert png.mode.startswith("I")
    stored = np.asarray(png).astype(np.int64)
    nrrd_dir = tmp_path / "n"
    write_samples(cgan_pkg, nrrd_dir, 1, seed=3, class_name="lung")
    hu = read_volume(nrrd_dir / "sample_0000.nrrd")[0, ..., 0].numpy()
    assert np.array_equal(stored - 1024, hu.T.astype(np.int64))
    assert png.info["dpi"][0] == pytest.approx(25.4 / 0.7, rel=1e-3)


def test_image_to_image_package_is_refused(tmp_path):
    cfg = {"type": "rescnn_lite", "spatial_dims": 2, "in_channels": 1, "out_channels": 1}
    pkg = save_package(tmp_path / "den", cfg, recipe="redcnn")
    with pytest.raises(ModelPackageError, match="maps images to images"):
        load_generative(pkg)
