"""Anomaly detection as what a restoration of normal anatomy takes away: calibrated maps (net residual,
per-tissue, net-free median, combined), scan and slice scores, thresholds calibrated on normal scans,
evaluation on synthetic lesions, masks out as ``.seg.nrrd`` and DICOM SEG. User guide: ``docs/anomaly.md``."""

from medgan.anomaly.calibrated import MAP_METHODS, CalibratedMapper, MapConfig
from medgan.anomaly.evaluation import LesionEvaluation, auprc, auroc, best_dice, dice, evaluate_lesions
from medgan.anomaly.maps import ANOMALY_RECIPES, AnomalyMapper, AnomalyResult, body_mask
from medgan.anomaly.masks import anomaly_mask
from medgan.anomaly.pipeline import CaseResult, calibrate, detect, find_scans
from medgan.anomaly.scores import ScoreConfig, scan_score, slice_scores
from medgan.anomaly.segmentation_io import write_dicom_seg, write_seg_nrrd
from medgan.anomaly.thresholds import THRESHOLDS_FILE, ThresholdCalibrator, Thresholds

__all__ = [
    "ANOMALY_RECIPES",
    "MAP_METHODS",
    "THRESHOLDS_FILE",
    "AnomalyMapper",
    "AnomalyResult",
    "CalibratedMapper",
    "CaseResult",
    "LesionEvaluation",
    "MapConfig",
    "ScoreConfig",
    "ThresholdCalibrator",
    "Thresholds",
    "anomaly_mask",
    "auprc",
    "auroc",
    "best_dice",
    "body_mask",
    "calibrate",
    "detect",
    "dice",
    "evaluate_lesions",
    "find_scans",
    "scan_score",
    "slice_scores",
    "write_dicom_seg",
    "write_seg_nrrd",
]
