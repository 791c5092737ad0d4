# EfficientDet-D0 on COCO, the config the other variants inherit. The
# variant decides the rest (backbone, BiFPN width / layers / fusion, head
# depth, anchors, input size and normalisation): scaled_config() writes it
# from the table in mmdet_efficientdet/scaling.py. `_base_` must stay the
# first statement: mmengine treats a config that imports a package before
# `_base_` as a pure-Python (lazy) config.
_base_ = [
    '../_base_/plugin.py',
    '../_base_/models/efficientdet.py',
    '../_base_/datasets/coco_efficientdet.py',
    '../_base_/schedules/efficientdet_sgd-cosine_300e.py',
]
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402

globals().update(scaled_config(_base_, 'd0'))
