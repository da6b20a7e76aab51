import pytest
import torch

from medgan.transforms.projector_cache import clear_projector_cache, get_projector


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
