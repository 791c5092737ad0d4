# Faster R-CNN R-50 with a BiFPN in place of its FPN: P2-P6 from C2-C5, P6
# pooled from C5 the EfficientDet way (the RPN uses P2-P6, the RoI head
# P2-P5). 256 wide to match the RPN and RoI heads, 3 layers. Not tuned: no
# COCO result is claimed for this mix.
_base_ = [
    '../_base_/plugin.py',
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
]

model = dict(
    neck=dict(
        _delete_=True,
        type='BiFPNNeck',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=5,
        num_stages=3,
        fusion='fast',
        padding='symmetric',
        conv_bias=False,
        # mmengine turns SyncBN into BN when training on one device
        norm_cfg=dict(type='SyncBN', eps=1e-3, momentum=0.01),
    ),
)
