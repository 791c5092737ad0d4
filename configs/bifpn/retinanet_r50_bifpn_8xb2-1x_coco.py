# RetinaNet R-50 with a BiFPN in place of its FPN: P3-P7 from C3-C5, P6 and
# P7 pooled from C5 the EfficientDet way. 256 wide to match the RetinaNet
# head, 3 layers (the depth of EfficientDet-D0). Not tuned: no COCO result
# is claimed for this mix.
_base_ = [
    '../_base_/plugin.py',
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
]

model = dict(
    backbone=dict(out_indices=(1, 2, 3)),
    neck=dict(
        _delete_=True,
        type='BiFPNNeck',
        in_channels=[512, 1024, 2048],
        out_channels=256,
        num_outs=5,
        num_stages=3,
        fusion='fast',
        # no TF weights to load: PyTorch padding, no bias before the norm
        padding='symmetric',
        conv_bias=False,
        # 2 images per GPU are too few for per-GPU batch statistics;
        # mmengine turns SyncBN into BN when training on one device
        norm_cfg=dict(type='SyncBN', eps=1e-3, momentum=0.01),
    ),
)
