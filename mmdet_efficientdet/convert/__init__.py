"""Checkpoint converters from other EfficientDet implementations."""

from .effdet import (
    EFFDET_LABEL_OFFSET,
    EFFDET_NUM_CLASSES,
    EFFDET_VARIANTS,
    EffdetVariant,
    check_converted,
    convert_effdet_checkpoint,
    convert_effdet_file,
    convert_effdet_state_dict,
    converted_config,
    get_effdet_variant,
    guess_variant,
    matching_variants,
    model_shapes,
)
from .effdet_keys import (
    TF_TO_MMDET_DELTAS,
    box_channel_order,
    head_keys_from_effdet,
    neck_keys_from_effdet,
)
from .effdet_scheme import EFFDET_SCHEME, load_effdet_release

__all__ = [
    'EFFDET_LABEL_OFFSET',
    'EFFDET_NUM_CLASSES',
    'EFFDET_SCHEME',
    'EFFDET_VARIANTS',
    'EffdetVariant',
    'TF_TO_MMDET_DELTAS',
    'box_channel_order',
    'check_converted',
    'convert_effdet_checkpoint',
    'convert_effdet_file',
    'convert_effdet_state_dict',
    'converted_config',
    'get_effdet_variant',
    'guess_variant',
    'head_keys_from_effdet',
    'load_effdet_release',
    'matching_variants',
    'model_shapes',
    'neck_keys_from_effdet',
]
