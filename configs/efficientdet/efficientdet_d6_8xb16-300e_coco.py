# EfficientDet-D6 on COCO: the variant is the only setting; see
# efficientdet_d0_8xb16-300e_coco.py.
_base_ = './efficientdet_d0_8xb16-300e_coco.py'
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402

globals().update(scaled_config(_base_, 'd6'))
