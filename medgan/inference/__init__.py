"""Inference: a model package over whole CT volumes (sliding windows, slabs, SR geometry, ONNX)."""

from medgan.inference.geometry import upscaled_affine
from medgan.inference.onnx_export import export_onnx, read_onnx
from medgan.inference.predictor import Predictor
from medgan.inference.runner import run_inference

__all__ = ["Predictor", "export_onnx", "read_onnx", "run_inference", "upscaled_affine"]
