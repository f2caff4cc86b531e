"""Encoders: the one way from a model file to embeddings or scores (``load_encoder``).

Every consumer (eval, index, search, identify, verify, fewshot, pseudolabel, explain, normalize, combine,
embed, export, the service) goes through ``load_encoder``, so preprocessing, test-time augmentation,
normalisation and the output size are honoured everywhere and a model of the wrong kind is one named error.
"""

from finegrain.encoders.encoder import Encoded, Encoder, SingleEncoder
from finegrain.encoders.loader import MODEL_FILE, WrongKindError, load_encoder, resolve_model_path
from finegrain.encoders.meta import MetaEncoder
from finegrain.encoders.normalize import FeatureNormalizer
from finegrain.encoders.preprocess import Preprocess
from finegrain.encoders.tta import TTA_CHOICES, parse_tta

__all__ = [
    "MODEL_FILE",
    "TTA_CHOICES",
    "Encoded",
    "Encoder",
    "FeatureNormalizer",
    "MetaEncoder",
    "Preprocess",
    "SingleEncoder",
    "WrongKindError",
    "load_encoder",
    "parse_tta",
    "resolve_model_path",
]
