# EfficientDet-D7 on COCO, trained for 600 epochs as in the official recipe;
# see efficientdet_d0_8xb16-300e_coco.py.
_base_ = [
    '../_base_/plugin.py',
    '../_base_/models/efficientdet.py',
    '../_base_/datasets/coco_efficientdet.py',
    '../_base_/schedules/efficientdet_sgd-cosine_600e.py',
]
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402

globals().update(scaled_config(_base_, 'd7'))
