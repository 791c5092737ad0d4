# COCO with the official EfficientDet augmentation: scale jitter 0.1-2.0,
# a crop of the input size, horizontal flip. `None` marks the input size,
# which the configs in configs/efficientdet/ fill in from
# mmdet_efficientdet.scaling (the data preprocessor pads every image to it).
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomResize',
        scale=None,
        ratio_range=(0.1, 2.0),
        keep_ratio=True,
    ),
    # crops without boxes are kept, as in the official pipeline
    dict(type='RandomCrop', crop_size=None, allow_negative_crop=True),
    dict(type='PackDetInputs'),
]
test_meta_keys = (
    'img_id',
    'img_path',
    'ori_shape',
    'img_shape',
    'scale_factor',
)
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=None, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=test_meta_keys,
    ),
]
# `tools/test.py --tta`: the test pipeline with and without a horizontal
# flip; DetTTAModel (configs/_base_/models/efficientdet.py) merges both
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=None, keep_ratio=True)],
            [
                dict(type='RandomFlip', prob=1.0),
                dict(type='RandomFlip', prob=0.0),
            ],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [
                dict(
                    type='PackDetInputs',
                    meta_keys=test_meta_keys + ('flip', 'flip_direction'),
                )
            ],
        ],
    ),
]
train_dataloader = dict(
    batch_size=16, num_workers=4, dataset=dict(pipeline=train_pipeline)
)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
