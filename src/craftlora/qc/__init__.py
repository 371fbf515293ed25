"""Automatic quality control of image sets: ``run_qc`` records a result per image and check in
the catalog; ``passed_ids`` gives the images that passed every automatic check."""

from craftlora.qc.runner import passed_ids, qc_summary, run_qc

__all__ = ["passed_ids", "qc_summary", "run_qc"]
