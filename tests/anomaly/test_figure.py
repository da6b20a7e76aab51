"""The per-case figure shows the slice in the radiological convention, whatever the stored order."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.anomaly.figure import radiological_view, save_anomaly_figure


@pytest.mark.parametrize("affine_ras, marked_at", [
    (np.diag([-1.0, -1.0, 1.0, 1.0]), (0, 0)),  # DICOM/LPS order: voxel (0, 0) is the right-anterior corner
    (np.diag([1.0, 1.0, 1.0, 1.0]), (5, 7)),  # RAS order (e.g. NRRD/NIfTI): voxel (0, 0) is left-posterior
    (np.diag([1.0, -1.0, 1.0, 1.0]), (0, 7)),  # LR-flipped DICOM: voxel (0, 0) is left-anterior
])
def test_patient_right_anterior_shows_top_left(affine_ras, marked_at):
    plane = np.zeros((8, 6))  # (X, Y)
    plane[0, 0] = 1.0
    view = radiological_view(plane, affine_ras)
    assert view.shape == (6, 8)  # rows = Y, columns = X
    assert tuple(int(v) for v in np.argwhere(view == 1.0)[0]) == marked_at


def test_figure_is_a_png(tmp_path):
    image = np.full((16, 12), -1000.0)
    image[4:12, 3:9] = 40.0
    heat = np.zeros_like(image)
    heat[6:9, 5:7] = 300.0
    path = save_anomaly_figure(tmp_path / "f.png", image, heat, heat > 100, affine_ras=np.eye(4), title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*"))  # the temporary sibling is gone
