"""A non-editable install works without the checkout's files.

``pip install .`` into a fresh virtual environment (sharing this one's
torch / mmcv / mmdet through --system-site-packages; nothing downloaded),
then, run from outside the checkout: the package imports from the venv,
the packaged configs load by name, the converter's ``--variant`` default
config is found, and the model index lists every config.
"""

import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import REPO

pytestmark = pytest.mark.slow


CHECKS = """
import os.path as osp, sys
import yaml
from mmengine.config import Config
import mmdet_efficientdet
from mmdet_efficientdet import get_config_file, package_files_root
from mmdet_efficientdet.convert import get_effdet_variant
venv, repo = sys.argv[1:]
where = mmdet_efficientdet.__file__
assert where.startswith(venv), where
root = package_files_root()
assert root.startswith(venv) and root.endswith('.mim'), root
cfg = Config.fromfile(get_config_file(
    'mmdet_efficientdet::quickstart/efficientdet_lite0_1xb8-12e_shapes.py'))
assert cfg.model.bbox_head.num_classes == 3
assert cfg.efficientdet['name'] == 'lite0'
converted = get_effdet_variant('tf_efficientdet_lite0').config
assert converted.startswith(root), converted
index = yaml.safe_load(open(osp.join(root, 'model-index.yml')))
names = []
for meta in index['Import']:
    for model in yaml.safe_load(open(osp.join(root, meta)))['Models']:
        assert osp.isfile(osp.join(root, model['Config'])), model['Config']
        names.append(model['Name'])
assert 'efficientdet_d0_8xb16-300e_coco' in names, names
print('checks passed', len(names), 'models')
"""


def run(args, cwd, **kwargs):
    out = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=900, **kwargs
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return out.stdout + out.stderr


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp('venv')
    run(
        [sys.executable, '-m', 'venv', '--system-site-packages', str(root)],
        cwd=str(root),
    )
    python = str(root / 'bin' / 'python')
    # a copy of the checkout, so that the build leaves nothing in it
    src = tmp_path_factory.mktemp('src')
    shutil.copytree(
        REPO,
        src / 'repo',
        ignore=shutil.ignore_patterns(
            '.git', 'build', 'work_dirs', 'data', '*.egg-info', '__pycache__'
        ),
    )
    run(
        [
            python,
            '-m',
            'pip',
            'install',
            '-q',
            '--no-deps',
            '--no-build-isolation',
            '--no-index',
            str(src / 'repo'),
        ],
        cwd=str(src),
    )
    return str(root), python


def test_installed_package_finds_its_files(venv, tmp_path):
    root, python = venv
    log = run([python, '-c', CHECKS, root, REPO], cwd=str(tmp_path))
    assert 'checks passed' in log


def test_converter_default_config_from_install(venv, tmp_path):
    from effdet import create_model

    root, python = venv
    model = create_model(
        'tf_efficientdet_lite0', pretrained=False, pretrained_backbone=False
    )
    src = str(tmp_path / 'lite0_effdet.pth')
    torch.save(model.state_dict(), src)
    dst = str(tmp_path / 'lite0_mmdet.pth')
    tool = osp.join(REPO, 'tools', 'model_converters', 'effdet_to_mmdet.py')
    log = run(
        [python, tool, src, dst, '--variant', 'tf_efficientdet_lite0'],
        cwd=str(tmp_path),
    )
    assert osp.isfile(dst), log
    assert osp.join(root, 'lib') in log, log  # the packaged config
