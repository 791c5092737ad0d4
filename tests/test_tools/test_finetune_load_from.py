"""Fine-tuning from COCO weights: load_from a 90-class checkpoint into a
3-class detector, converted beforehand or an effdet release file directly.

Everything but the class prediction loads and equals the checkpoint; the
skipped tensors are exactly the class prediction's, named in one log line;
training then starts.
"""

import glob
import os.path as osp

import pytest
import torch
from effdet import create_model
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmdet_efficientdet.convert import convert_effdet_checkpoint

pytestmark = pytest.mark.slow

CLASS_PREDICTION = {
    'bbox_head.conv_cls.pointwise_conv.conv.weight',
    'bbox_head.conv_cls.pointwise_conv.conv.bias',
}


@pytest.fixture(scope='module')
def effdet_release(tmp_path_factory):
    """Random tf_efficientdet_lite0 weights under effdet's release name."""
    torch.manual_seed(0)
    model = create_model(
        'tf_efficientdet_lite0', pretrained=False, pretrained_backbone=False
    )
    path = tmp_path_factory.mktemp('effdet') / 'tf_efficientdet_lite0-0.pth'
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture(scope='module')
def converted(effdet_release, tmp_path_factory):
    dst = str(tmp_path_factory.mktemp('converted') / 'lite0_coco.pth')
    convert_effdet_checkpoint(effdet_release, dst, 'tf_efficientdet_lite0')
    return dst


def loaded_runner(config, load_from, work_dir):
    cfg = Config.fromfile(config)
    cfg.load_from = load_from
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.checkpoint.interval = 1
    runner = Runner.from_cfg(cfg)
    # what Runner.train() does before its first iteration
    runner.call_hook('before_run')
    runner._init_model_weights()
    runner.load_or_resume()
    return runner


def log_text(work_dir):
    (path,) = glob.glob(osp.join(str(work_dir), '*', '*.log'))
    return open(path).read()


@pytest.mark.parametrize('source', ['converted', 'effdet://'])
def test_all_but_the_class_prediction_loads(
    source, converted, effdet_release, tiny_config, tmp_path
):
    load_from = (
        converted if source == 'converted' else ('effdet://' + effdet_release)
    )
    runner = loaded_runner(tiny_config, load_from, tmp_path)
    try:
        ours = runner.model.state_dict()
        theirs = torch.load(converted, map_location='cpu')['state_dict']
        assert set(ours) == set(theirs)
        differ = {k for k in ours if ours[k].shape != theirs[k].shape}
        assert differ == CLASS_PREDICTION
        for key in set(ours) - differ:
            assert torch.equal(ours[key], theirs[key]), key
        (line,) = [
            x
            for x in log_text(tmp_path).splitlines()
            if 'load_from: skipped' in x
        ]
        assert 'skipped 2 of' in line
        for key in CLASS_PREDICTION:
            assert key in line
        assert '(810, 64, 1, 1) -> (27, 64, 1, 1)' in line
    finally:
        MMLogger._instance_dict.pop(runner.logger.instance_name, None)


def test_finetune_trains_from_effdet_release(
    effdet_release, tiny_config, tmp_path
):
    cfg = Config.fromfile(tiny_config)
    cfg.load_from = 'effdet://' + effdet_release
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs = 1
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
        assert runner.iter == 4
        assert osp.isfile(osp.join(str(tmp_path), 'epoch_1.pth'))
    finally:
        MMLogger._instance_dict.pop(runner.logger.instance_name, None)


def test_effdet_scheme_names_an_unknown_file(tiny_config, tmp_path):
    path = tmp_path / 'my_weights.pth'
    torch.save({'a': torch.zeros(1)}, path)
    with pytest.raises(ValueError, match='cannot tell the effdet variant'):
        loaded_runner(tiny_config, f'effdet://{path}', tmp_path)


def test_separable_head_into_full_conv_head(converted, tiny_config, tmp_path):
    """configs/finetune/'s head (use_depthwise=False) shares no tensor with
    EfficientDet's: the rest of the detector loads, the head keeps its
    initialisation, and one log line says why and how to load it."""
    config = tmp_path / 'full_head.py'
    config.write_text(
        f"_base_ = '{tiny_config}'\n"
        'model = dict(bbox_head=dict(use_depthwise=False))\n'
    )
    runner = loaded_runner(str(config), converted, tmp_path)
    try:
        ours = runner.model.state_dict()
        theirs = torch.load(converted, map_location='cpu')['state_dict']
        body = {k for k in theirs if not k.startswith('bbox_head.')}
        assert body < set(ours)
        for key in body:
            assert torch.equal(ours[key], theirs[key]), key
        towers = [k for k in ours if k.startswith('bbox_head.cls_convs.')]
        assert towers and all(k not in theirs for k in towers)
        (line,) = [
            x
            for x in log_text(tmp_path).splitlines()
            if "the checkpoint's bbox_head is EfficientDet's" in x
        ]
        assert 'model.bbox_head.use_depthwise=True' in line
    finally:
        MMLogger._instance_dict.pop(runner.logger.instance_name, None)
