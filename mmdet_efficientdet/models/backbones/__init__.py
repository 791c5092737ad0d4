from .efficientnet import EfficientNetBackbone
from .efficientnet_arch import ARCHS, ArchSpec, decode_stages, round_channels
from .efficientnet_weights import (
    convert_state_dict,
    fit_problems,
    load_backbone_checkpoint,
    read_checkpoint,
)

__all__ = [
    'ARCHS',
    'ArchSpec',
    'EfficientNetBackbone',
    'convert_state_dict',
    'decode_stages',
    'fit_problems',
    'load_backbone_checkpoint',
    'read_checkpoint',
    'round_channels',
]
