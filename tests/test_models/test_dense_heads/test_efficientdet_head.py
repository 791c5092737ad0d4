"""EfficientDetHead against effdet's HeadNet, loss and post-processing."""

import math

import pytest
import torch
from effdet.anchors import AnchorLabeler, Anchors
from effdet.bench import _batch_detection, _post_process
from effdet.config import get_efficientdet_config
from effdet.efficientdet import HeadNet
from effdet.loss import loss_fn
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet_efficientdet.convert import box_channel_order, head_keys_from_effdet
from mmdet_efficientdet.models.dense_heads import EfficientDetHead
from mmdet_efficientdet.models.dense_heads.efficientdet_head import TF_INIT
from mmdet_efficientdet.models.task_modules import TF_ASPECTS

TRAIN_CFG = ConfigDict(
    assigner=dict(type='EfficientDetAssigner'),
    sampler=dict(type='PseudoSampler'),
    allowed_border=-1,
    pos_weight=-1,
    debug=False,
)
TEST_CFG = ConfigDict(
    nms_pre=5000,
    score_thr=0.0,
    nms=dict(type='nms', iou_threshold=0.5),
    max_per_img=100,
)
# TF's box net predicts (dy, dx, dh, dw) per anchor, mmdet's coder
# (dx, dy, dw, dh): the same 36 channels, permuted within each anchor
TF_BOX_ORDER = box_channel_order(9)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny inputs: a second intra-op thread only adds synchronisation,
    which on a busy 2-core machine costs up to 100x (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build_head(
    num_classes, width, stacked_convs, strides=(8, 16, 32, 64, 128), **kwargs
):
    return EfficientDetHead(
        num_classes,
        width,
        feat_channels=width,
        stacked_convs=stacked_convs,
        anchor_generator=dict(
            type='EfficientDetAnchorGenerator', strides=list(strides)
        ),
        train_cfg=TRAIN_CFG,
        test_cfg=TEST_CFG,
        **kwargs,
    )


def num_params(module, prefixes):
    return sum(
        p.numel()
        for name, p in module.named_parameters()
        if name.startswith(prefixes)
    )


# Shared reference, section 2: class net, box net (90 classes, TF layout).
@pytest.mark.parametrize(
    'width,convs,levels,class_net,box_net',
    [
        (64, 3, 5, 69_354, 19_044),  # D0, Lite0
        (160, 4, 5, 247_050, 122_436),  # D3, Lite3
        (200, 4, 5, 340_610, 185_036),  # Lite3x
        (384, 5, 5, 1_090_986, 792_996),  # D6, D7
        (384, 5, 6, 1_094_826, 796_836),  # D7x: one more level of norms
    ],
)
def test_param_counts(width, convs, levels, class_net, box_net):
    head = build_head(
        90, width, convs, strides=[8 * 2**i for i in range(levels)]
    )
    assert num_params(head, ('cls_', 'conv_cls')) == class_net
    assert num_params(head, ('reg_', 'conv_reg')) == box_net


def test_state_dict_keys():
    head = build_head(3, 8, 2, strides=[8, 16])
    keys = list(head.state_dict())
    tower = [
        '{t}_convs.{r}.depthwise_conv.conv.weight',
        '{t}_convs.{r}.pointwise_conv.conv.weight',
        '{t}_convs.{r}.pointwise_conv.conv.bias',
    ]
    norm = [
        f'{{t}}_norms.{{r}}.{{l}}.{k}'
        for k in ('weight', 'bias', 'running_mean', 'running_var')
        + ('num_batches_tracked',)
    ]
    predict = [
        'conv_{t}.depthwise_conv.conv.weight',
        'conv_{t}.pointwise_conv.conv.weight',
        'conv_{t}.pointwise_conv.conv.bias',
    ]
    expected = []
    for t in ('cls', 'reg'):
        for r in range(2):
            expected += [k.format(t=t, r=r) for k in tower]
        for r in range(2):
            for level in range(2):
                expected += [k.format(t=t, r=r, l=level) for k in norm]
    expected += [k.format(t=t) for t in ('cls', 'reg') for k in predict]
    assert sorted(keys) == sorted(expected)
    assert head.conv_cls.pointwise_conv.conv.weight.shape == (27, 8, 1, 1)
    assert head.conv_reg.pointwise_conv.conv.weight.shape == (36, 8, 1, 1)


@pytest.mark.parametrize('padding', ['same', 'symmetric'])
def test_init_cfg_reaches_every_conv(padding):
    """TF's variance scaling (std 1 / sqrt(fan in)) whichever the padding:
    with 'same' the convs are Conv2dSame, which an init_cfg naming only
    Conv2d misses. The default is mmcv's ConvModule init (Kaiming normal,
    fan out, gain sqrt(2))."""
    for init_cfg in (TF_INIT, None):
        torch.manual_seed(0)
        head = build_head(3, 64, 2, padding=padding, init_cfg=init_cfg)
        head.init_weights()
        for conv in (*head.cls_convs, *head.reg_convs, head.conv_reg):
            for half in (conv.depthwise_conv, conv.pointwise_conv):
                weight = half.conv.weight
                out, fan_in, kh, kw = weight.shape
                expected = (
                    (fan_in * kh * kw) ** -0.5
                    if init_cfg
                    else (2 / (out * kh * kw)) ** 0.5
                )
                assert weight.std().item() == pytest.approx(expected, rel=0.15)


def test_full_convs_option():
    """use_depthwise=False: full 3x3 convs of RetinaHead's shape in the
    towers and predictions, norms per level as before, prior bias on the
    class prediction, and a loss that trains them."""
    torch.manual_seed(0)
    head = build_head(3, 8, 2, strides=[8, 16], use_depthwise=False)
    head.init_weights()
    tower = ['{t}_convs.{r}.weight', '{t}_convs.{r}.bias']
    convs = [
        k.format(t=t, r=r)
        for t in ('cls', 'reg')
        for r in range(2)
        for k in tower
    ]
    convs += [
        f'conv_{t}.{k}' for t in ('cls', 'reg') for k in ('weight', 'bias')
    ]
    keys = set(head.state_dict())
    assert {k for k in keys if '_norms.' not in k} == set(convs)
    assert len(keys) - len(convs) == 2 * 2 * 2 * 5  # towers, repeats, levels
    assert head.conv_cls.weight.shape == (27, 8, 3, 3)
    assert head.conv_reg.weight.shape == (36, 8, 3, 3)
    # 3x3 x in x out + bias per conv; 2 norms x 2 levels x (weight, bias)
    tower_params = 2 * (9 * 8 * 8 + 8) + 2 * 2 * 2 * 8
    assert num_params(head, ('cls_', 'conv_cls')) == (
        tower_params + 9 * 8 * 27 + 27
    )
    bias = head.conv_cls.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log(99)))
    assert head.output_conv(head.conv_cls) is head.conv_cls
    feats = [torch.randn(2, 8, s, s) for s in (8, 4)]
    cls_scores, bbox_preds = head(feats)
    assert [tuple(c.shape) for c in cls_scores] == [
        (2, 27, 8, 8),
        (2, 27, 4, 4),
    ]
    gt = InstanceData(
        bboxes=torch.tensor([[4.0, 4.0, 40.0, 36.0]]),
        labels=torch.tensor([1]),
    )
    metas = [dict(img_shape=(64, 64), pad_shape=(64, 64))] * 2
    losses = head.loss_by_feat(cls_scores, bbox_preds, [gt, gt], metas)
    total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
    total.backward()
    assert head.cls_convs[0].weight.grad.abs().sum() > 0
    assert head.conv_reg.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    'variant', ['tf_efficientdet_d0', 'tf_efficientdet_lite0']
)
def test_outputs_equal_effdet_headnet(variant):
    torch.manual_seed(0)
    config = get_efficientdet_config(variant)
    class_net = HeadNet(config, num_outputs=config.num_classes).eval()
    box_net = HeadNet(config, num_outputs=4).eval()
    for module in (class_net, box_net):
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.rand_like(tensor) if 'var' in name else None
                tensor.copy_(
                    noise if noise is not None else torch.randn_like(tensor)
                )
    act = dict(type='ReLU6' if 'lite' in variant else 'SiLU')
    head = build_head(
        config.num_classes,
        config.fpn_channels,
        config.box_class_repeats,
        act_cfg=act,
    ).eval()
    state = head_keys_from_effdet(class_net.state_dict(), 'cls')
    state.update(head_keys_from_effdet(box_net.state_dict(), 'reg'))
    head.load_state_dict(state, strict=True)
    # odd sizes exercise TF SAME padding
    feats = [
        torch.randn(2, config.fpn_channels, s, s + 1) for s in (13, 7, 4, 2, 1)
    ]
    cls_scores, bbox_preds = head(feats)
    with torch.no_grad():
        expected_cls = class_net(feats)
        expected_box = box_net(feats)
    for ours, theirs in zip(cls_scores, expected_cls):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(bbox_preds, expected_box):
        torch.testing.assert_close(
            ours[:, TF_BOX_ORDER], theirs, rtol=1e-4, atol=1e-4
        )


def test_norms_are_per_level_and_convs_shared():
    head = build_head(3, 8, 2)
    assert len(head.cls_convs) == 2 and len(head.reg_convs) == 2
    assert [len(n) for n in head.cls_norms] == [5, 5]
    feats = [torch.randn(2, 8, s, s) for s in (8, 4, 2, 2, 2)]
    head.train()
    head(feats)
    means = [norm.running_mean for norm in head.cls_norms[0]]
    # the last three levels see different maps, hence different statistics
    assert not torch.equal(means[2], means[3])


def test_prior_probability_bias():
    head = build_head(3, 8, 1)
    head.init_weights()
    bias = head.conv_cls.pointwise_conv.conv.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log(99)))
    assert torch.sigmoid(bias[0]).item() == pytest.approx(0.01)
    assert head.conv_reg.pointwise_conv.conv.bias.abs().max() == 0


def random_outputs(num_classes, image_size, batch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sizes = [image_size // 2**level for level in range(3, 8)]
    cls_scores = [
        torch.randn(batch, 9 * num_classes, s, s, generator=gen) * 2 - 3
        for s in sizes
    ]
    bbox_preds = [
        torch.randn(batch, 36, s, s, generator=gen) * 0.2 for s in sizes
    ]
    return cls_scores, bbox_preds


def test_losses_equal_effdet():
    num_classes, size = 4, 256
    head = build_head(num_classes, 8, 1)
    cls_scores, bbox_preds = random_outputs(num_classes, size, 3)
    boxes = [
        # a centre on an anchor centre (x = 100 = 4 + 8 * 12): deltas of 0
        torch.tensor(
            [[84.0, 20, 116, 90], [100, 100, 250, 200], [30, 150, 60, 250]]
        ),
        torch.tensor([[5.0, 5, 40, 30], [120, 40, 200, 230]]),
        torch.tensor([[0.0, 0, 256, 256], [2, 2, 9, 9], [3, 3, 10, 10]]),
    ]
    labels = [
        torch.tensor([0, 2, 1]),
        torch.tensor([1, 3]),
        torch.tensor([3, 0, 2]),
    ]
    gts = [InstanceData(bboxes=b, labels=lab) for b, lab in zip(boxes, labels)]
    metas = [dict(img_shape=(size, size), pad_shape=(size, size))] * 3
    losses = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)

    anchors = Anchors(3, 7, 3, TF_ASPECTS, 4.0, (size, size))
    labeler = AnchorLabeler(anchors, num_classes, match_threshold=0.5)
    cls_targets, box_targets, num_positives = labeler.batch_label_anchors(
        [b[:, [1, 0, 3, 2]] for b in boxes], [lab + 1 for lab in labels]
    )
    # the zero-delta case is present, so its masking is exercised
    positives = torch.cat([t.reshape(3, -1) for t in cls_targets], 1) >= 0
    box_t = torch.cat([t.reshape(3, -1, 4) for t in box_targets], 1)
    assert (box_t[positives] == 0).any()
    _, cls_loss, box_loss = loss_fn(
        cls_scores,
        [b[:, TF_BOX_ORDER] for b in bbox_preds],
        cls_targets,
        box_targets,
        num_positives,
        num_classes=num_classes,
        alpha=0.25,
        gamma=1.5,
        delta=0.1,
        box_loss_weight=50.0,
    )
    torch.testing.assert_close(
        sum(losses['loss_cls']), cls_loss, rtol=1e-5, atol=0
    )
    torch.testing.assert_close(
        sum(losses['loss_bbox']), 50.0 * box_loss.float(), rtol=1e-5, atol=0
    )


def test_cpu_focal_loss_equals_mmdet_anchor_head():
    from mmdet.models.dense_heads import AnchorHead

    head = build_head(4, 8, 1)
    cls_scores, bbox_preds = random_outputs(4, 128, 2, seed=4)
    gen = torch.Generator().manual_seed(5)
    n = cls_scores[0].shape[-1] ** 2 * 9
    labels = torch.randint(0, 5, (2, n), generator=gen)  # 4: background
    args = (
        cls_scores[0],
        bbox_preds[0],
        None,
        labels,
        torch.rand(2, n, generator=gen),
        torch.randn(2, n, 4, generator=gen),
        torch.rand(2, n, 4, generator=gen),
        17.0,
    )
    ours = head.loss_by_feat_single(*args)
    mmdet = AnchorHead.loss_by_feat_single(head, *args)
    for a, b in zip(ours, mmdet):
        torch.testing.assert_close(a, b)


def test_normaliser_is_positives_plus_one():
    head = build_head(2, 8, 1)
    anchors, flags = head.get_anchors(
        [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)],
        [dict(pad_shape=(256, 256))] * 2,
        device='cpu',
    )
    gts = [
        InstanceData(
            bboxes=torch.tensor([[10.0, 10, 60, 60]]), labels=torch.tensor([1])
        ),
        InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long)
        ),
    ]
    metas = [dict(img_shape=(256, 256), pad_shape=(256, 256))] * 2
    targets = head.get_targets(anchors, flags, gts, metas)
    labels = torch.cat([t.reshape(-1) for t in targets[0]])
    num_pos = int((labels < 2).sum())
    assert num_pos >= 1
    # mmdet would count the empty image as 1
    assert targets[4] == num_pos + 1
    with_results = head.get_targets(
        anchors, flags, gts, metas, return_sampling_results=True
    )
    assert len(with_results) == 6 and with_results[4] == num_pos + 1


def test_predictions_equal_effdet():
    num_classes, size, batch = 6, 256, 2
    head = build_head(num_classes, 8, 1)
    cls_scores, bbox_preds = random_outputs(num_classes, size, batch, seed=1)
    metas = [dict(img_shape=(size, size), scale_factor=(1.0, 1.0))] * batch
    results = head.predict_by_feat(
        cls_scores, bbox_preds, batch_img_metas=metas
    )

    anchors = Anchors(3, 7, 3, TF_ASPECTS, 4.0, (size, size))
    class_out, box_out, indices, classes = _post_process(
        cls_scores,
        [b[:, TF_BOX_ORDER] for b in bbox_preds],
        num_levels=5,
        num_classes=num_classes,
        max_detection_points=5000,
    )
    expected = _batch_detection(
        batch,
        class_out,
        box_out,
        anchors.boxes,
        indices,
        classes,
        img_scale=torch.ones(batch),
        img_size=torch.tensor([[size, size]] * batch),
        max_det_per_image=100,
    )
    for ours, theirs in zip(results, expected):
        assert len(ours) == 100
        torch.testing.assert_close(
            ours.bboxes, theirs[:, :4], rtol=0, atol=1e-3
        )
        torch.testing.assert_close(
            ours.scores, theirs[:, 4], rtol=0, atol=1e-6
        )
        assert torch.equal(ours.labels + 1, theirs[:, 5].long())


def test_candidates_are_the_best_over_all_levels():
    head = build_head(3, 8, 1)
    cls_scores, bbox_preds = random_outputs(3, 256, 1, seed=2)
    meta = [dict(img_shape=(256, 256), scale_factor=(1.0, 1.0))]
    cfg = ConfigDict(TEST_CFG, nms_pre=1000)
    (results,) = head.predict_by_feat(
        cls_scores, bbox_preds, batch_img_metas=meta, cfg=cfg, with_nms=False
    )
    # mmdet's per-level nms_pre would keep up to 5 x 1000 here
    assert len(results) == 1000
    flat = torch.cat([s[0].permute(1, 2, 0).reshape(-1) for s in cls_scores])
    assert torch.equal(results.scores, flat.topk(1000).values.sigmoid())


def test_soft_nms_option():
    head = build_head(3, 8, 1)
    cls_scores, bbox_preds = random_outputs(3, 256, 1, seed=3)
    meta = [dict(img_shape=(256, 256), scale_factor=(1.0, 1.0))]
    hard = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=meta)[
        0
    ]
    cfg = ConfigDict(
        TEST_CFG,
        nms=dict(type='soft_nms', method='gaussian', sigma=0.5, min_score=0.0),
    )
    soft = head.predict_by_feat(
        cls_scores, bbox_preds, batch_img_metas=meta, cfg=cfg
    )[0]
    assert len(soft) == len(hard) == 100
    assert torch.equal(soft.scores[0], hard.scores[0])
    assert (soft.scores[1:] <= soft.scores[:-1]).all()
    assert not torch.equal(soft.bboxes, hard.bboxes)


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(stacked_convs=0), 'stacked_convs must be >= 1'),
        (dict(prior_prob=1.0), 'prior_prob must be in'),
        (dict(padding='valid'), 'padding must be one of'),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(num_classes=3, width=8, stacked_convs=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_head(**args)


def test_wrong_number_of_levels():
    head = build_head(3, 8, 1)
    with pytest.raises(ValueError, match='built for 5 levels'):
        head([torch.rand(1, 8, 4, 4)] * 4)


def test_registered_beside_mmdet():
    from mmdet.models.dense_heads import AnchorHead
    from mmdet.models.task_modules import AnchorGenerator, MaxIoUAssigner
    from mmdet.registry import MODELS, TASK_UTILS

    from mmdet_efficientdet.models.task_modules import (
        EfficientDetAnchorGenerator,
        EfficientDetAssigner,
    )

    assert MODELS.get('EfficientDetHead') is EfficientDetHead
    assert TASK_UTILS.get('EfficientDetAnchorGenerator') is (
        EfficientDetAnchorGenerator
    )
    assert TASK_UTILS.get('EfficientDetAssigner') is EfficientDetAssigner
    # mmdet's own classes are untouched
    assert MODELS.get('AnchorHead') is AnchorHead
    assert TASK_UTILS.get('AnchorGenerator') is AnchorGenerator
    assert TASK_UTILS.get('MaxIoUAssigner') is MaxIoUAssigner
