"""MONAI Bundle export: a model package as ``configs/`` + ``models/`` that ``monai.bundle run`` executes.

>>> export_bundle("runs/cyclegan/model", "bundles/ldct")
>>> # python -m monai.bundle run --config_file bundles/ldct/configs/inference.json \\
>>> #     --meta_file bundles/ldct/configs/metadata.json --input_file scan.nii.gz --output_dir out/

The bundle's ``inference.json`` instantiates :class:`BundleRunner`, which loads the package copied into
``models/`` (safetensors weights + ``medgan.yaml``; nothing is unpickled) and runs the same
:func:`medgan.inference.run_inference` as ``medgan-infer``, so the two agree voxel for voxel. The bundle
therefore needs medgan installed where it runs (see docs/bundle.md).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from medgan.errors import ConfigError, InputError, MissingFileError
from medgan.io.atomic import check_output, staged_output

MODELS_DIR = "models"
CONFIG_DIR = "configs"
#: MONAI Bundle metadata schema the metadata.json declares (the one the Model Zoo's bundles use).
SCHEMA = ("https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/"
          "meta_schema_20220324.json")

# ``monai.bundle run`` puts the bundle root (the parent of configs/) at sys.path[1] just before it runs the
# "run" expression, so the default root needs no absolute path: the bundle can be moved or zipped.
INFERENCE_CONFIG: dict[str, Any] = {
    "bundle_root": "$__import__('medgan.bundle').bundle.bundle_root_from_path()",
    "model_dir": "$@bundle_root + '/models'",
    "input_file": "",
    "output_dir": "",
    "output_format": "nifti",
    "device": "cpu",
    "overwrite": False,
    "runner": {
        "_target_": "medgan.bundle.BundleRunner",
        "model_dir": "@model_dir",
        "device": "@device",
        "output_format": "@output_format",
        "overwrite": "@overwrite",
    },
    "run": ["$print('wrote', @runner(@input_file, @output_dir))"],
}


def bundle_root_from_path() -> str:
    """The bundle root ``monai.bundle run`` added to ``sys.path`` (the folder holding ``configs/``)."""
    for entry in sys.path[1:3]:
        if (Path(entry) / CONFIG_DIR / "inference.json").is_file() and (Path(entry) / MODELS_DIR).is_dir():
            return str(Path(entry).resolve())
    raise ConfigError("cannot locate the bundle folder; pass --bundle_root DIR to monai.bundle run")


def _metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    import monai
    import torch

    from medgan import __version__

    scale = int(manifest.get("scale", 1))
    return {
        "schema": SCHEMA,
        "version": "0.1.0",
        "changelog": {"0.1.0": f"exported by medgan-export (medgan {__version__})"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": __import__("numpy").__version__,
        "required_packages_version": {"medgan": __version__},
        "name": f"medgan {manifest.get('recipe', 'model')}",
        "task": manifest.get("description", "CT image-to-image"),
        "description": (f"{manifest.get('description', 'medgan model')}: CT in Hounsfield units in, CT in HU out "
                        f"(scale x{scale}); runs medgan's sliding-window Predictor. Needs medgan installed."),
        "authors": "medgan",
        "copyright": "see the model's training data licence",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1,
                                 "spatial_shape": ["*", "*", "*"], "dtype": "int16",
                                 "value_range": [-1024, 3071], "is_patch_data": False,
                                 "channel_def": {"0": "image"}}},
            "outputs": {"pred": {"type": "image", "format": "hounsfield", "num_channels": 1,
                                 "spatial_shape": ["*", "*", "*"], "dtype": "int16",
                                 "value_range": [-1024, 3071], "is_patch_data": False,
                                 "channel_def": {"0": "image"}}},
        },
    }


def export_bundle(model: str | os.PathLike, folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a MONAI Bundle for ``model`` (package folder or ``.ckpt``) to ``folder``; returns ``folder``.

    The folder is built in a temporary sibling, run-checked (the package re-read from ``models/``) and
    renamed into place, so a failed export leaves nothing.

    Raises:
        ModelPackageError: the model cannot be loaded. OutputExistsError: ``folder`` exists without ``overwrite``.
    """
    from medgan.inference.loading import check_manifest_for_inference
    from medgan.package import load_model_package, save_model_package

    folder = Path(folder)
    check_output(folder, overwrite, inputs=[model])
    manifest, state = load_model_package(model)
    check_manifest_for_inference(manifest, model)
    with staged_output(folder) as staged:
        (staged / CONFIG_DIR).mkdir(parents=True)
        save_model_package(staged / MODELS_DIR, state, manifest)
        (staged / CONFIG_DIR / "metadata.json").write_text(json.dumps(_metadata(manifest), indent=2) + "\n")
        (staged / CONFIG_DIR / "inference.json").write_text(json.dumps(INFERENCE_CONFIG, indent=2) + "\n")
        (staged / "README.md").write_text(
            "# medgan MONAI Bundle\n\nNeeds medgan installed (`pip install medgan`).\n\n"
            "    python -m monai.bundle run --config_file configs/inference.json --meta_file "
            "configs/metadata.json --input_file scan.nii.gz --output_dir out/\n")
    return folder


class BundleRunner:
    """What the bundle's ``run`` expression calls: ``runner(input_file, output_dir)`` → the written path.

    Args:
        model_dir: the bundle's ``models/`` folder (a medgan model package).
        device, **predictor_kw: as for :class:`medgan.inference.Predictor`.
        output_format: ``nifti`` (default), ``nrrd``, ``mha`` or ``dicom``.
        overwrite: replace an existing output.
    """

    def __init__(self, model_dir: str, device: str = "cpu", output_format: str = "nifti", overwrite: bool = False,
                 **predictor_kw: Any) -> None:
        if not (Path(model_dir) / "medgan.yaml").is_file():
            raise MissingFileError(f"{model_dir} holds no medgan model package (medgan.yaml)")
        self.model_dir, self.output_format, self.overwrite = model_dir, output_format, overwrite
        self.predictor_kw = {"device": device, **predictor_kw}

    def __call__(self, input_file: str, output_dir: str) -> list[str]:
        from medgan.inference import run_inference
        from medgan.io.formats import DEFAULT_SUFFIX
        from medgan.io.scans import case_name

        if not input_file or not output_dir:
            raise InputError("pass --input_file SCAN and --output_dir DIR to monai.bundle run")
        name = case_name(input_file) + DEFAULT_SUFFIX[self.output_format]
        written = run_inference(self.model_dir, input_file, Path(output_dir) / name, self.output_format,
                                overwrite=self.overwrite, progress=False, **self.predictor_kw)
        return [str(p) for p in written]
