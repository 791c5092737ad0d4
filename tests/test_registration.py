"""Importing the plugin registers its modules and replaces nothing."""

import subprocess
import sys

import pytest

CHECK = """
import mmdet.models.backbones as core
from mmdet.registry import MODELS
assert MODELS.get('EfficientNet') is core.EfficientNet, MODELS.get(
    'EfficientNet')
from mmdet_efficientdet.models.backbones import EfficientNetBackbone
assert MODELS.get('EfficientNetBackbone') is EfficientNetBackbone
print('ok')
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    'first,second',
    [
        ('mmdet.models', 'mmdet_efficientdet'),
        ('mmdet_efficientdet', 'mmdet.models'),
    ],
)
def test_import_order(first, second):
    code = f'import {first}\nimport {second}\n' + CHECK
    out = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'ok'


def test_custom_imports_in_config_registers(tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "_base_ = ['{}']\n".format(
            __file__.replace(
                'tests/test_registration.py', 'configs/_base_/plugin.py'
            )
        )
    )
    code = f"""
from mmengine.config import Config
from mmdet.utils import register_all_modules
from mmdet.registry import MODELS
cfg = Config.fromfile({str(cfg)!r})
assert cfg.custom_imports.imports == ['mmdet_efficientdet']
register_all_modules()
print(MODELS.build(dict(type='EfficientNetBackbone')).out_channels)
"""
    out = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[40, 112, 320]'
