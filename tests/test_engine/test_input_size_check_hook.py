"""InputSizeCheckHook: a dataloader assigned after scaled_config brings
back the parent's sizes; the run is refused with each transform named."""

from types import SimpleNamespace

import pytest
from mmengine.config import Config

from helpers import QUICKSTART
from mmdet_efficientdet.engine import InputSizeCheckHook, input_size_problems

# the trap: scaled_config's dataloaders replaced by a merge with the
# quickstart's 256 px ones
REASSIGNED = f"""
_base_ = {QUICKSTART!r}
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402
globals().update(scaled_config(_base_, 'lite0'))
train_dataloader = dict(batch_size=4)
"""
IN_PLACE = f"""
_base_ = {QUICKSTART!r}
from mmdet_efficientdet.scaling import scaled_config  # noqa: E402
globals().update(scaled_config(_base_, 'lite0'))
train_dataloader['batch_size'] = 4
"""


def load(tmp_path, text):
    path = tmp_path / 'cfg.py'
    path.write_text(text)
    return Config.fromfile(str(path))


def test_reassigned_dataloader_is_refused_naming_each_transform(tmp_path):
    cfg = load(tmp_path, REASSIGNED)
    assert cfg.train_dataloader.batch_size == 4
    problems = input_size_problems(cfg)
    assert problems == [
        'train_dataloader.dataset.pipeline[2] RandomResize.scale=(256, 256)',
        'train_dataloader.dataset.pipeline[3] RandomCrop.crop_size=(256, 256)',
        'train_dataloader.dataset.pipeline[6] Pad.size=(256, 256)',
    ]
    with pytest.raises(
        ValueError,
        match=r'input size 320 \(efficientdet.image_size\) but 3 settings '
        r'are not: train_dataloader.dataset.pipeline\[2\] RandomResize',
    ):
        InputSizeCheckHook().before_run(SimpleNamespace(cfg=cfg))


def test_in_place_change_passes(tmp_path):
    cfg = load(tmp_path, IN_PLACE)
    assert cfg.train_dataloader.batch_size == 4
    assert input_size_problems(cfg) == []
    InputSizeCheckHook().before_run(SimpleNamespace(cfg=cfg))


def test_preprocessor_padding_and_configs_without_a_variant(tmp_path):
    cfg = load(tmp_path, IN_PLACE)
    cfg.model.data_preprocessor.pad_size_divisor = 32
    assert input_size_problems(cfg) == [
        'model.data_preprocessor.pad_size_divisor=32'
    ]
    cfg.pop('efficientdet')
    assert input_size_problems(cfg) == []
