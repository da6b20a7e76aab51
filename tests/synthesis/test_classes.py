import numpy as np
import pytest
import SimpleITK as sitk

from medgan.errors import InputError
from medgan.synthesis.classes import folder_labels, read_class_labels, read_labels_csv


def test_labels_csv_numbers_class_names_in_sorted_order(tmp_path):
    (tmp_path / "labels.csv").write_text("case,class\nb1,soft\na1,lung\nc2,soft\n")
    labels = read_class_labels(tmp_path)
    assert labels.names == ("lung", "soft")
    assert labels.cases == {"b1": 1, "a1": 0, "c2": 1}
    assert labels.label_of("c2") == 1
    with pytest.raises(InputError, match="case 'zz' has no class"):
        labels.label_of("zz")
    (tmp_path / "labels.csv").write_text("case,class\nx,10\ny,9\n")
    assert read_class_labels(tmp_path).names == ("9", "10")  # integers by value, not as text


@pytest.mark.parametrize("text, message", [
    ("name,label\na,b\n", "header 'case,class'"),
    ("case,class\na,lung\na,soft\n", "listed as 'lung' and as 'soft'"),
    ("case,class\na,\n", "line 2 needs both"),
])
def test_bad_labels_csv(tmp_path, text, message):
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        read_labels_csv(tmp_path / "labels.csv")


def test_no_labels_csv_means_none(tmp_path):
    assert read_class_labels(tmp_path) is None


def test_class_folders(tmp_path):
    for cls, cases in {"lung": ["p1", "p2"], "soft": ["p3"]}.items():
        (tmp_path / cls).mkdir()
        for case in cases:
            sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 4, 4), np.int16)), str(tmp_path / cls / f"{case}.nrrd"))
    labels = folder_labels(tmp_path)
    assert labels.names == ("lung", "soft") and labels.cases == {"p1": 0, "p2": 0, "p3": 1}
    (tmp_path / "soft" / "p3.nrrd").rename(tmp_path / "soft" / "p3.txt")
    with pytest.raises(InputError, match="at least two"):
        folder_labels(tmp_path)


def test_datamodule_takes_labels_from_labels_csv(tmp_path):
    from medgan.data import CTDataModule

    folder = tmp_path / "ds" / "train" / "target"
    folder.mkdir(parents=True)
    for case, value in [("lung_a", -800), ("soft_a", 40), ("lung_b", -820)]:
        sitk.WriteImage(sitk.GetImageFromArray(np.full((2, 8, 8), value, np.int16)), str(folder / f"{case}.nrrd"))
    (tmp_path / "ds" / "labels.csv").write_text("case,class\nlung_a,lung\nlung_b,lung\nsoft_a,soft\n")
    dm = CTDataModule(tmp_path / "ds", pairing="single", patch_size=[8, 8], batch_size=6)
    dm.setup("fit")
    assert dm.class_names == ["lung", "soft"]
    assert {c.name: c.label for c in dm.layout.cases("train", "target")} == {"lung_a": 0, "lung_b": 0, "soft_a": 1}
    import torch

    threshold = float(dm.normalizer.forward(torch.tensor(-400.0)))
    for batch in dm.train_dataloader():  # every item's label follows its case
        bright = batch["target"].flatten(1).mean(1) > threshold
        assert torch.equal(bright, batch["label"] == 1)
    (tmp_path / "ds" / "labels.csv").write_text("case,class\nlung_a,lung\n")
    with pytest.raises(InputError, match="case 'lung_b' has no class"):
        CTDataModule(tmp_path / "ds", pairing="single", patch_size=[8, 8]).setup("fit")
