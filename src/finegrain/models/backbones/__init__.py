"""Importing this package registers every backbone."""

from finegrain.models.backbones.conv4 import Conv4
from finegrain.models.backbones.lbp import LBP
from finegrain.models.backbones.mobilenet_v2 import MobileNetV2
from finegrain.models.backbones.resnet import ResNet
from finegrain.models.backbones.tiny_darknet import TinyDarknet

__all__ = ["LBP", "Conv4", "MobileNetV2", "ResNet", "TinyDarknet"]
