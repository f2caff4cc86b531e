"""Explanations: Grad-CAM maps of the regions that made two images similar, or made a score high."""

from finegrain.explain.cam import (
    explanation_figure,
    explanation_png,
    grad_cam,
    overlay,
    score_cam,
    similarity_cam,
)

__all__ = ["explanation_figure", "explanation_png", "grad_cam", "overlay", "score_cam", "similarity_cam"]
