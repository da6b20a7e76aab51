import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan.data.orientation import reorient
from medgan.errors import ConfigError, ModelPackageError
from medgan.inference import Predictor, upscaled_affine


@pytest.fixture(scope="module")
def chest(ct_chest_path) -> MetaTensor:
    """The real chest CT, cropped non-square, with an oblique RAS affine and a stand-in header entry."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(ct_chest_path)))  # (Z, Y, X)
    vol = torch.from_numpy(arr.transpose(2, 1, 0)[:, 8:108, 10:22].astype(np.float32))[None]  # (1, 128, 100, 12)
    rot, _ = np.linalg.qr(np.array([[0.9, 0.3, 0.1], [-0.2, 0.8, 0.4], [0.1, -0.3, 0.95]]))
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.7, 0.8, 2.5])
    affine[:3, 3] = [-40.0, 12.0, 300.0]
    return MetaTensor(vol, affine=torch.as_tensor(affine), meta={"source_format": "nrrd", "dicom_headers": "kept"})


def test_identity_net_reproduces_hu_and_geometry(make_package, chest):
    pkg = make_package({"type": "identity", "in_channels": 3}, input_mode="2.5d", context_slices=1)
    out = Predictor(pkg, slab_slices=5, roi_size=(48, 40), overlap=0.5).predict(chest)
    assert out.shape == chest.shape
    torch.testing.assert_close(out.affine, chest.affine)
    assert out.meta["dicom_headers"] == "kept" and out.meta["source_format"] == "nrrd"
    # no seam, shift or flip: every voxel equal to float rounding, and exactly equal once rounded to HU;
    # the model's window is [-1024, 3071] HU: above it values are clipped; the scanner's -3024 outside the
    # field of view lies below the floor, holds no anatomy and is passed through unchanged
    expected = chest.as_tensor().clamp(max=3071)
    assert (chest.as_tensor() < -1024).any()
    assert (out.as_tensor() - expected).abs().max() < 1e-3
    assert torch.equal(out.as_tensor().round(), expected)


def test_sr_net_output_overlays_input(make_package, chest):
    pkg = make_package({"type": "upsample", "scale": 2, "mode": "nearest"}, scale=2)
    pred = Predictor(pkg)
    assert pred.scales == (2, 2)
    small = chest[:, :40, :30, :3]
    out = pred.predict(small)
    assert out.shape == (1, 80, 60, 3)
    expected = small.as_tensor().clamp(-1024, 3071).repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert (out.as_tensor() - expected).abs().max() < 1e-3
    np.testing.assert_allclose(out.affine.numpy(), upscaled_affine(small.affine, (2, 2, 1)))
    # the outer corner of the last fine voxel is the outer corner of the last coarse voxel
    far_fine = out.affine.numpy() @ np.array([80 - 0.5, 60 - 0.5, 2, 1])
    far_coarse = small.affine.numpy() @ np.array([40 - 0.5, 30 - 0.5, 2, 1])
    np.testing.assert_allclose(far_fine, far_coarse, atol=1e-9)


def test_net_that_needs_a_size_multiple_gets_padded_input(make_package, chest):
    pred = Predictor(make_package({"type": "strided"}))
    pred.predict(chest[:, :32, :24, :1])
    assert pred.multiple is None  # the real window shape fitted: no probing needed
    odd = chest[:, :30, :22, :2]
    out = pred.predict(odd)
    assert pred.multiple == 4  # 30 x 22 did not fit: probed, padded to 32 x 24, cropped back
    assert out.shape == odd.shape


def test_manifest_scale_that_disagrees_with_the_net_is_a_package_error(make_package, chest):
    pred = Predictor(make_package({"type": "upsample", "scale": 2}, scale=3))
    with pytest.raises(ModelPackageError, match="scale 3"):
        pred.predict(chest[:, :16, :16, :1])


def test_patchwise_and_whole_slice_inference_agree(make_package, chest):
    pkg = make_package({"type": "convstack"}, seed=3)
    vol = chest[:, :, :, 4:6]
    whole = Predictor(pkg, roi_size="full").predict(vol).as_tensor()
    patches = Predictor(pkg, roi_size=(48, 48), overlap=0.75).predict(vol).as_tensor()
    diff = (whole - patches).abs()
    # Only voxels within 3 voxels (the receptive-field radius) of a window border see the zero padding.
    # With roi 48 (Gaussian sigma 0.125·48 = 6) such a voxel is >= 21.5 voxels from its window's centre,
    # weight <= exp(-21.5²/72) = 1.6e-3, while overlap 0.75 (stride 12) puts every voxel farther than
    # roi/2 from the image border within 6 voxels of some window's centre, weight >= exp(-36/72) = 0.61.
    # There a padded window moves a voxel by at most 1.6e-3 / 0.61 = 2.7e-3 of the padding error, itself
    # bounded by the output's range. In the border strip every window is off-centre, so the ratio is
    # looser: measured 7.8e-3 of the range (16 HU); asserted < 1e-2. Whole-slice inference (the default
    # for 2D models) has no window borders at all.
    out_range = (whole.max() - whole.min()).item()
    inner = diff[:, 24:-24, 24:-24]
    assert inner.max() <= 2.7e-3 * out_range, (inner.max(), out_range)
    assert diff.max() < 1e-2 * out_range and diff.mean() < 1e-3 * out_range
    assert out_range > 100  # the net is far from constant, so the bound is not vacuous


def test_torch_and_onnxruntime_backends_agree(make_package, chest):
    cfg = {"type": "basic_unet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
           "features": [4, 4, 8, 8, 8, 4]}
    pkg = make_package(cfg, seed=1)
    vol = chest[:, :64, :48, :3]
    a = Predictor(pkg, backend="torch").predict(vol).as_tensor()
    b = Predictor(pkg, backend="onnx").predict(vol).as_tensor()
    # The bound is 1e-3 in the net's normalised units, i.e. 1e-3 · 2047.5 HU per unit (window
    # [-1024, 3071] → [-1, 1]) = 2.05 HU; measured here: ~1e-4 HU (float32 kernels differ in rounding).
    hu_per_unit = 4095.0 / 2.0
    print("torch vs onnxruntime max abs diff (HU):", (a - b).abs().max().item())
    assert (a - b).abs().max() <= 1e-3 * hu_per_unit
    assert a.std() > 10  # a non-trivial output


def test_user_errors(make_package, tmp_path):
    pkg = make_package({"type": "identity"})
    with pytest.raises(ConfigError, match="patch_size"):
        Predictor(pkg, roi_size="patch")
    with pytest.raises(ConfigError, match="--backend"):
        Predictor(pkg, backend="tensorrt")
    with pytest.raises(ConfigError, match="onnx backend runs float32"):
        Predictor(pkg, backend="onnx", precision="bf16")
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        Predictor(pkg, device="cpu", precision="16")
    (pkg / "model.safetensors").unlink()
    with pytest.raises(ModelPackageError, match="model.safetensors"):
        Predictor(pkg)
    wrong = make_package({"type": "identity", "in_channels": 3})
    import yaml

    m = yaml.safe_load((wrong / "medgan.yaml").read_text())
    m["nets"]["generator"]["in_channels"] = 1
    (wrong / "medgan.yaml").write_text(yaml.safe_dump(m))
    with pytest.raises(ModelPackageError, match="do not fit"):
        Predictor(wrong)


def test_fixed_size_autoencoder_runs_on_its_img_size_windows_in_torch_and_onnx(chest, tmp_path):
    # a VAE from the registry: dense latent layers, so the net takes exactly img_size windows
    from medgan.nets import build_net
    from medgan.package import make_manifest, save_model_package

    cfg = {"type": "vae", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "img_size": 32,
           "latent_size": 4, "channels": [4, 8], "strides": [2, 2]}
    torch.manual_seed(0)
    net = build_net(cfg).eval()
    manifest = make_manifest(recipe="vae", nets={"generator": cfg}, infer_net="generator", spatial_dims=2,
                             normalization={"type": "window"}, patch_size=[32, 32])
    pkg = save_model_package(tmp_path / "vae", {f"generator.{k}": v for k, v in net.state_dict().items()},
                             manifest)
    vol = chest[:, :50, :40, 5:7]  # not a multiple of 32: windows overlap, edges padded
    a = Predictor(pkg, overlap=0.5).predict(vol)
    b = Predictor(pkg, overlap=0.5, backend="onnx").predict(vol)
    assert a.shape == vol.shape
    assert (a.as_tensor() - b.as_tensor()).abs().max() <= 1e-3 * 2047.5
    # one window alone is the VAE's reconstruction (mu path in eval) of that window
    window = Predictor(pkg).predict(chest[:, :32, :32, 5:6]).as_tensor()[0, :, :, 0]
    with torch.no_grad():
        crop = chest[:, :32, :32, 5:6]
        hu = crop.as_tensor()[0, :, :, 0]
        # the net sees the canonical L-P-S voxel order (medgan.data.orientation); its output goes back
        canon, canon_affine = reorient(crop.as_tensor(), crop.affine)
        x = (canon[0, :, :, 0].clamp(-1024, 3071) + 1024) / 2047.5 - 1
        y = (net(x[None, None])[0][0, 0] + 1) * 2047.5 - 1024
        codes = "".join(nib.aff2axcodes(crop.affine.numpy()))
        ref = reorient(y[None, :, :, None], canon_affine, codes)[0][0, :, :, 0]
        ref = torch.where(hu < -1024, hu, ref)  # the padding outside the field of view is passed through
    assert (window - ref).abs().max() < 1e-2
    with pytest.raises(ConfigError, match="img_size"):
        Predictor(pkg, roi_size=(64, 64))


def test_storage_order_does_not_change_the_result(make_package, ct_chest_path, tmp_path):
    """A net that is not mirror-symmetric gives the same world-space result for a scan stored mirrored."""
    import SimpleITK as sitk

    from medgan.io import read_volume

    image = sitk.ReadImage(str(ct_chest_path))[30:70, 40:90, 10:13]
    plain, mirrored = tmp_path / "plain.nrrd", tmp_path / "mirrored.nrrd"
    sitk.WriteImage(image, str(plain))
    sitk.WriteImage(sitk.Flip(image, [True, False, False]), str(mirrored))  # same world, reversed storage
    predictor = Predictor(make_package({"type": "convstack"}, seed=3))
    a, b = predictor.predict(read_volume(plain)), predictor.predict(read_volume(mirrored))
    torch.testing.assert_close(b.affine, read_volume(mirrored).affine)  # output keeps the input's layout
    # back to one storage order, the two results agree voxel for voxel
    assert torch.allclose(a.as_tensor(), b.as_tensor().flip(1), atol=1e-3)
    # and the net did change the image (so the comparison means something)
    assert (a.as_tensor() - read_volume(plain).as_tensor().clamp(max=3071)).abs().max() > 1.0


def test_padding_below_the_window_is_passed_through(make_package, chest):
    out = Predictor(make_package({"type": "convstack"}, seed=1)).predict(chest).as_tensor()
    outside = chest.as_tensor() < -1024
    assert outside.any() and torch.equal(out[outside], chest.as_tensor()[outside])
    assert (out[~outside] - chest.as_tensor()[~outside].clamp(max=3071)).abs().max() > 1.0  # the net acted
