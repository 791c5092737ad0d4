# effdet's efficientdet_d1 (PyTorch-native weights), converted with
# python tools/model_converters/effdet_to_mmdet.py SRC.pth DST.pth
# 90 outputs (output i is COCO category id i + 1); see
# mmdet_efficientdet.convert.converted_config.
_base_ = '../efficientdet_d1_8xb16-300e_coco.py'
from mmdet_efficientdet.convert import converted_config  # noqa: E402

globals().update(converted_config(_base_, 'efficientdet_d1'))
