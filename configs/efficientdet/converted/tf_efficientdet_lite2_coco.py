# effdet's tf_efficientdet_lite2 (TF-ported COCO weights), converted with
# python tools/model_converters/effdet_to_mmdet.py SRC.pth DST.pth
# 90 outputs (output i is COCO category id i + 1); see
# mmdet_efficientdet.convert.converted_config.
_base_ = '../efficientdet_lite2_8xb16-300e_coco.py'
from mmdet_efficientdet.convert import converted_config  # noqa: E402

globals().update(converted_config(_base_, 'tf_efficientdet_lite2'))
