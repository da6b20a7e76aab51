import onnx
import pytest
import torch
import yaml

from medgan.errors import ModelPackageError
from medgan.inference import export_onnx, read_onnx


def test_export_embeds_manifest_and_refuses_incompatible_files(make_package, tmp_path):
    pkg = make_package({"type": "upsample", "scale": 2, "mode": "bilinear"}, scale=2)
    out = export_onnx(pkg, tmp_path / "sr.onnx")
    manifest, data, multiple, scales, fixed = read_onnx(out)
    assert manifest["scale"] == 2 and scales == (2, 2) and multiple == 1 and fixed is None
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = torch.randn(2, 1, 12, 20)
    y = sess.run(None, {"image": x.numpy()})[0]
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert y.shape == (2, 1, 24, 40) and abs(y - ref.numpy()).max() < 1e-5  # dynamic batch and sizes

    model = onnx.load(str(out))
    for prop in model.metadata_props:
        if prop.key == "medgan_manifest":
            m = yaml.safe_load(prop.value)
            m["format_version"] = 7
            prop.value = yaml.safe_dump(m)
    onnx.save(model, str(tmp_path / "old.onnx"))
    with pytest.raises(ModelPackageError, match="format_version 7"):
        read_onnx(tmp_path / "old.onnx")
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelPackageError, match="medgan-export"):
        read_onnx(tmp_path / "bare.onnx")
