"""The GoogLeNet architecture and the blocks it is built from (no weights, no files)."""
from .blocks import AuxHead, ChannelAffine, ConvBN, Inception
from .googlenet import TOPOLOGIES, GoogLeNet, count_parameters

__all__ = ["AuxHead", "ChannelAffine", "ConvBN", "GoogLeNet", "Inception", "TOPOLOGIES", "count_parameters"]
