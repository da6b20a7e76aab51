import pytest
import torch
import yaml

from medgan.errors import ModelPackageError, OutputExistsError
from medgan.package import load_model_package, make_manifest, save_model_package


def _manifest(**kw):
    base = dict(
        recipe="dae",
        nets={"generator": {"type": "dae", "spatial_dims": 2}},
        infer_net="generator",
        spatial_dims=2,
        normalization={"type": "window", "hu_min": -1024.0, "hu_max": 3071.0, "out_min": -1.0, "out_max": 1.0},
    )
    base.update(kw)
    return make_manifest(**base)


def test_round_trip_keeps_weights_and_manifest(tmp_path):
    state = {"generator.w": torch.randn(3, 4), "generator.b": torch.arange(5.0)}
    out = save_model_package(tmp_path / "model", state, _manifest(scale=2, patch_size=[64, 64]))
    manifest, loaded = load_model_package(out)
    assert manifest["scale"] == 2 and manifest["patch_size"] == [64, 64]
    assert set(loaded) == set(state)
    for k in state:
        assert torch.equal(loaded[k], state[k])
    assert not list(tmp_path.glob(".model.tmp-*")), "temporary sibling left behind"


def test_existing_package_is_not_replaced_without_overwrite(tmp_path):
    save_model_package(tmp_path / "m", {"generator.w": torch.zeros(1)}, _manifest())
    with pytest.raises(OutputExistsError):
        save_model_package(tmp_path / "m", {"generator.w": torch.ones(1)}, _manifest())
    save_model_package(tmp_path / "m", {"generator.w": torch.ones(1)}, _manifest(), overwrite=True)
    assert load_model_package(tmp_path / "m")[1]["generator.w"].item() == 1.0


def test_missing_files_and_incompatible_version_are_user_errors(tmp_path):
    out = save_model_package(tmp_path / "m", {"generator.w": torch.zeros(1)}, _manifest())
    data = yaml.safe_load((out / "medgan.yaml").read_text())
    data["format_version"] = 99
    (out / "medgan.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelPackageError, match="format_version 99"):
        load_model_package(out)
    (out / "model.safetensors").unlink()
    with pytest.raises(ModelPackageError, match="missing model.safetensors"):
        load_model_package(out)
    with pytest.raises(ModelPackageError, match="not found"):
        load_model_package(tmp_path / "nope")


def test_infer_net_must_name_a_stored_net(tmp_path):
    with pytest.raises(ModelPackageError, match="infer_net"):
        save_model_package(tmp_path / "m", {}, _manifest(infer_net="critic"))


def test_checkpoint_loads_weights_only_and_filters_to_package_nets(tmp_path):
    manifest = _manifest()
    ckpt = {
        "state_dict": {"generator.w": torch.ones(2), "discriminator.w": torch.zeros(2)},
        "hyper_parameters": {"medgan_manifest": manifest},
    }
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path)
    loaded_manifest, state = load_model_package(path)
    assert loaded_manifest["recipe"] == "dae"
    assert list(state) == ["generator.w"]


def test_checkpoint_with_arbitrary_object_is_refused(tmp_path):
    import argparse

    # any class outside torch's allow-list stands for an object whose unpickling could run code
    path = tmp_path / "evil.ckpt"
    torch.save({"obj": argparse.Namespace(a=1), "hyper_parameters": {}}, path)
    with pytest.raises(ModelPackageError, match="weights_only"):
        load_model_package(path)


def test_replacing_a_package_keeps_the_old_one_until_the_new_one_is_whole(tmp_path, monkeypatch):
    """A failed re-read leaves the old package; a good one swaps in with no moment without a package."""
    import medgan.package as package

    folder = tmp_path / "m"
    save_model_package(folder, {"generator.w": torch.zeros(1)}, _manifest())

    def broken(path):
        raise ModelPackageError(f"{path}: re-read failed")

    monkeypatch.setattr(package, "load_model_package", broken)
    with pytest.raises(ModelPackageError, match="re-read failed"):
        save_model_package(folder, {"generator.w": torch.ones(1)}, _manifest(), overwrite=True)
    monkeypatch.undo()
    assert load_model_package(folder)[1]["generator.w"].item() == 0.0
    save_model_package(folder, {"generator.w": torch.ones(1)}, _manifest(), overwrite=True)
    assert load_model_package(folder)[1]["generator.w"].item() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
