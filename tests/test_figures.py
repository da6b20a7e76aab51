import numpy as np
import pytest

from medgan.figures import centre_slice, mean_pairwise_distance, panel_views, save_diversity_plot, save_panel


def test_panel_is_a_png_with_four_columns(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = [{"input": rng.normal(-500, 100, (1, 32, 32)), "output": rng.normal(-500, 50, (1, 32, 32)),
             "target": rng.normal(-500, 50, (1, 32, 32))} for _ in range(2)]
    path = save_panel(tmp_path / "s" / "p.png", rows, (-1350, 150), title="step 3")
    image = Image.open(path)
    assert image.format == "PNG" and image.width > 2 * image.height / 2
    assert not list(path.parent.glob(".p.png.*")), "temporary file left behind"
    with pytest.raises(ValueError, match="at least one row"):
        save_panel(tmp_path / "q.png", [], (-1350, 150))


def test_centre_slice_of_volumes_and_slabs():
    vol = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert centre_slice(vol).shape == (4, 5)
    assert np.array_equal(centre_slice(vol), vol[1, 1])


def test_pairwise_distance_drops_to_zero_on_collapse(tmp_path):
    diverse = np.stack([np.full((4, 4), v) for v in (0.0, 1.0, 3.0)])
    assert mean_pairwise_distance(diverse) == pytest.approx((1 + 3 + 2) / 3)
    assert mean_pairwise_distance(np.zeros((3, 4, 4))) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_distance(np.zeros((1, 4)))
    assert save_diversity_plot(tmp_path / "d.png", [1, 2], [1.0, 0.1], 0.25).is_file()


def test_difference_column_ignores_padding_below_air():
    target = np.array([[-3024.0, -1000.0], [0.0, 40.0]])
    output = np.array([[-1024.0, -990.0], [5.0, 40.0]])
    views = panel_views({"input": target, "output": output, "target": target})
    assert np.array_equal(views["difference"], [[0.0, 10.0], [5.0, 0.0]])
    assert "difference" not in panel_views({"input": target, "output": output})
