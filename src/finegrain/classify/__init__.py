"""Using a classification model: class probabilities for images (``Classifier``)."""

from finegrain.classify.predictor import Classifier, Predictions

__all__ = ["Classifier", "Predictions"]
