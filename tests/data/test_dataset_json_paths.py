"""dataset.json names its input folders relative to the dataset: no absolute path of the machine it was
made on (a home folder, a folder named after a patient) travels with a shared dataset."""

from __future__ import annotations

import json

from medgan.data.prepare import _build


def test_input_folders_are_stored_relative_to_the_dataset(tmp_path):
    scans, pairs = tmp_path / "hospital" / "scans", tmp_path / "pairs"
    scans.mkdir(parents=True)
    pairs.mkdir()
    out = tmp_path / "work" / "ds"

    def work(root):
        return {"input": str(scans), "input_full": str(scans.resolve()), "pairs": str(pairs), "seed": 0}

    _build(out, overwrite=False, inputs=[scans], work=work)
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["input"] == manifest["input_full"] == "../../hospital/scans"
    assert manifest["pairs"] == "../../pairs"
    assert str(tmp_path) not in json.dumps(manifest)
    assert (out / manifest["input"]).resolve() == scans.resolve()
