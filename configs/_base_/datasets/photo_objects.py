# A photo-like fine-tuning set: one class, 'face' (the real faces of
# scikit-image's LFW subset, 70 for train, 30 others for val), pasted at
# 5-14 % of the width into 1024x768 crops of scikit-image's sample photos,
# with unlabelled clutter; 64 train and 32 val images drawn deterministically
# by `python tools/misc/make_photo_dataset.py`
# (mmdet_efficientdet/datasets/photo_objects.py). The pipelines are the
# shapes set's; configs rescale them to their variant's input size.
_base_ = './shapes_detection.py'
data_root = 'data/photo_objects/'
metainfo = dict(classes=('face',), palette=[(220, 20, 60)])
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
    )
)
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
