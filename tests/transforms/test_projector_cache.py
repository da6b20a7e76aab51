import pytest
import torch

from medgan.transforms import projector_cache
from medgan.transforms.projector_cache import clear_projector_cache, default_cache_dir, get_projector


def test_operators_are_cached_per_geometry():
    a = get_projector(16, 8)
    assert get_projector(16, 8) is a
    assert get_projector(16, 10) is not a


def test_disk_cache_round_trip_and_damaged_file_is_rebuilt(tmp_path):
    clear_projector_cache()
    built = get_projector(20, 12, cache_dir=tmp_path)
    files = list((tmp_path / "projectors").glob("*.pt"))
    assert len(files) == 1 and not list((tmp_path / "projectors").glob(".*tmp*"))
    clear_projector_cache()
    loaded = get_projector(20, 12, cache_dir=tmp_path)
    assert loaded is not built
    img = torch.rand(2, 20, 20)
    assert torch.equal(loaded.forward(img), built.forward(img))
    sino = built.forward(img)
    assert torch.equal(loaded.fbp(sino), built.fbp(sino))
    clear_projector_cache()
    files[0].write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable projector cache"):
        rebuilt = get_projector(20, 12, cache_dir=tmp_path)
    assert torch.equal(rebuilt.forward(img), built.forward(img))
    clear_projector_cache()


def test_default_cache_folder_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDGAN_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.setenv("MEDGAN_CACHE_DIR", "off")
    assert default_cache_dir() is None
    monkeypatch.delenv("MEDGAN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if default_cache_dir() is not None and "linux" in __import__("sys").platform:
        assert default_cache_dir() == tmp_path / "xdg" / "medgan"


def test_large_operators_go_to_the_default_cache_and_the_cap_evicts_the_oldest(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDGAN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(projector_cache, "DISK_MIN_SIZE", 16)
    clear_projector_cache()
    get_projector(16, 8)
    first = list((tmp_path / "projectors").glob("*.pt"))
    assert len(first) == 1
    monkeypatch.setenv("MEDGAN_CACHE_MAX_GB", str(first[0].stat().st_size * 1.5 / 1e9))  # room for one
    get_projector(18, 8)
    kept = list((tmp_path / "projectors").glob("*.pt"))
    assert len(kept) == 1 and kept[0] != first[0]  # the older one made room
    clear_projector_cache()
    monkeypatch.setenv("MEDGAN_CACHE_DIR", "off")
    get_projector(20, 8)
    assert len(list((tmp_path / "projectors").glob("*.pt"))) == 1
    clear_projector_cache()


def test_fourier_operators_round_trip_through_the_disk_cache(tmp_path):
    from medgan.transforms.projector_cache import get_fourier_projector

    clear_projector_cache()
    built = get_fourier_projector(24, 16, cache_dir=tmp_path)
    assert len(list((tmp_path / "projectors").glob("fourier_*.pt"))) == 1
    clear_projector_cache()
    loaded = get_fourier_projector(24, 16, cache_dir=tmp_path)
    assert loaded is not built
    img = torch.rand(2, 24, 24)
    assert torch.equal(loaded.forward(img), built.forward(img))
    sino = built.forward(img)
    assert torch.equal(loaded.fbp(sino, "gaussian", 0.3, noise=True), built.fbp(sino, "gaussian", 0.3, noise=True))
    clear_projector_cache()
