# EfficientDet-Lite1 on COCO (EfficientNet-Lite backbone, ReLU6, sum
# fusion, 127 / 128 input normalisation, all from the variant); see
# efficientdet_d0_8xb16-300e_coco.py.
_base_ = './efficientdet_d0_8xb16-300e_coco.py'
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402

globals().update(scaled_config(_base_, 'lite1'))
