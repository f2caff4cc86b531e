"""Data: read sources, decode once into a cache, validate, split, augment, batch."""

from finegrain.data.augment import PRESETS, build_augmentation, seed_transform
from finegrain.data.cache import DecodeCache, default_cache_dir
from finegrain.data.cached_images import CachedImages
from finegrain.data.dataset import ImageDataset, worker_init_fn
from finegrain.data.images import ImageError, decode_image, resize_square
from finegrain.data.records import Record
from finegrain.data.samplers import BalancedBinSampler, PKSampler, ShardedBatchSampler, bin_scores
from finegrain.data.sources import IMAGE_EXTENSIONS, read_folder, read_list, read_manifest, read_source
from finegrain.data.split import split_positions, split_records
from finegrain.data.validate import PreparedData, prepare

__all__ = [
    "BalancedBinSampler",
    "IMAGE_EXTENSIONS",
    "PRESETS",
    "CachedImages",
    "DecodeCache",
    "ImageDataset",
    "ImageError",
    "PKSampler",
    "ShardedBatchSampler",
    "PreparedData",
    "Record",
    "bin_scores",
    "build_augmentation",
    "decode_image",
    "default_cache_dir",
    "prepare",
    "read_folder",
    "read_list",
    "read_manifest",
    "read_source",
    "resize_square",
    "seed_transform",
    "split_positions",
    "split_records",
    "worker_init_fn",
]
