from .bbox_nms import class_wise_nms, resolve_nms_op
from .conv_bias import add_conv_bias
from .norm import BN_TF
from .padding import (
    PADDING_MODES,
    Conv2dSame,
    CropStart,
    MaxPool2dSame,
    build_max_pool,
    check_padding,
    conv_cfg_for,
    crop_start,
    same_conv_padding,
    same_conv_padding_2d,
    same_pad_amounts,
    same_pool_padding,
)

__all__ = [
    'CropStart',
    'crop_start',
    'same_conv_padding',
    'same_conv_padding_2d',
    'class_wise_nms',
    'resolve_nms_op',
    'Conv2dSame',
    'BN_TF',
    'PADDING_MODES',
    'MaxPool2dSame',
    'build_max_pool',
    'check_padding',
    'conv_cfg_for',
    'same_pad_amounts',
    'same_pool_padding',
    'add_conv_bias',
]
