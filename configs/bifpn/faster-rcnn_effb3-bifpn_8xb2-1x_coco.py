# Faster R-CNN with EfficientNet-B3 and a BiFPN of EfficientDet-D3's size
# (160 wide, 6 layers, TF layout) over P2-P6. Not tuned: no COCO result is
# claimed for this mix.
_base_ = './faster-rcnn_r50-bifpn_8xb2-1x_coco.py'

from mmdet_efficientdet.scaling import get_spec  # noqa: E402

# timm's ImageNet weights of TF EfficientNet-B3 (AutoAugment), the ones
# EfficientDet-D3 starts from, converted to this package's layout on load
checkpoint = get_spec('d3').backbone_init_cfg['checkpoint']
sync_bn_tf = dict(type='SyncBN', eps=1e-3, momentum=0.01)
bifpn_width = 160

model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientNetBackbone',
        arch='b3',
        out_indices=(1, 2, 3, 4),  # C2-C5: 32, 48, 136, 384 channels
        padding='same',
        norm_cfg=sync_bn_tf,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint),
    ),
    neck=dict(
        in_channels=[32, 48, 136, 384],
        out_channels=bifpn_width,
        num_stages=6,
        padding='same',
        conv_bias=True,
        norm_cfg=sync_bn_tf,
    ),
    rpn_head=dict(in_channels=bifpn_width, feat_channels=bifpn_width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=bifpn_width),
        bbox_head=dict(in_channels=bifpn_width),
    ),
)
