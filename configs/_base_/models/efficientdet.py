# EfficientDet: the parts that no compound coefficient changes. What the
# variant decides - backbone arch, BiFPN width / layers / fusion, head
# depth, anchor strides and scale, activation, input normalisation and size
# - is filled in by the configs in configs/efficientdet/ from
# mmdet_efficientdet.scaling; this file alone does not build.

# TF batch norm: epsilon 1e-3, decay 0.99 (= momentum 0.01). SyncBN as in
# the official multi-device training; on one device it runs as plain BN.
norm_cfg = dict(type='SyncBN', eps=1e-3, momentum=0.01)

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        bgr_to_rgb=True,
        # padded after normalisation, with 0, as the official input
        # pipeline pads
        pad_value=0,
    ),
    backbone=dict(
        type='EfficientNetBackbone', padding='same', norm_cfg=norm_cfg
    ),
    neck=dict(
        type='BiFPNNeck', padding='same', conv_bias=True, norm_cfg=norm_cfg
    ),
    bbox_head=dict(
        type='EfficientDetHead',
        num_classes=80,
        padding='same',
        conv_bias=True,
        norm_cfg=norm_cfg,
        prior_prob=0.01,
        anchor_generator=dict(
            type='EfficientDetAnchorGenerator',
            scales_per_octave=3,
            # (width, height) multipliers, as the official aspect_ratios
            aspect_ratios=[(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)],
        ),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0],
        ),
        # loss_cls, loss_bbox: EfficientDetHead's defaults, the official
        # focal loss (gamma 1.5, alpha 0.25) and box loss (Huber, delta
        # 0.1, weight 50: HUBER_DELTA, BOX_LOSS_WEIGHT in efficientdet_head)
    ),
    train_cfg=dict(
        # IoU >= 0.5 positive, < 0.5 negative, and every ground truth takes
        # its best anchor, as the official ArgMaxMatcher
        assigner=dict(
            type='EfficientDetAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5
        ),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False,
    ),
    test_cfg=dict(
        # official max_detection_points: best 5000 (anchor, class) scores
        # over all levels
        nms_pre=5000,
        score_thr=0.0,
        # hard NMS; the official evaluation uses gaussian soft-NMS, sigma
        # 0.5 (type='soft_nms', method='gaussian', sigma=0.5, min_score=0)
        # split_thr: above 4000 candidates, one NMS per class (mmcv's
        # batched_nms; the same result). One class-offset NMS over 5000
        # boxes costs ~50 ms on a CPU, ten times the per-class ones -
        # torchvision's batched_nms switches at the same 4000 on the CPU
        nms=dict(type='nms', iou_threshold=0.5, split_thr=4000),
        max_per_img=100,
    ),
)
# `tools/test.py --tta` wraps the model in this: the detections of every
# augmented view (tta_pipeline in the dataset configs), mapped back to the
# image, merged by class-wise NMS as the head's own test_cfg does
tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100),
)
