# FCOS R-50 (caffe style, GN head) with a BiFPN in place of its FPN: P3-P7
# from C3-C5, P6 and P7 pooled from C5 the EfficientDet way. GroupNorm in
# the BiFPN like in the FCOS head, 256 wide, 3 layers. Not tuned: no COCO
# result is claimed for this mix.
_base_ = [
    '../_base_/plugin.py',
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
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
        padding='symmetric',
        conv_bias=False,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
    ),
)
