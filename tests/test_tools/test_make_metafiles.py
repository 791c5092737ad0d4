"""model-index.yml and the metafiles: complete, and what the configs give."""

import glob
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import yaml

from helpers import REPO


def indexed_models():
    index = yaml.safe_load(open(osp.join(REPO, 'model-index.yml')))
    models = []
    for meta in index['Import']:
        models += yaml.safe_load(open(osp.join(REPO, meta)))['Models']
    return models


def test_every_config_is_indexed_once():
    """Every config but the bases and the former names kept as aliases."""
    tool = runpy.run_path(osp.join(REPO, 'tools', 'misc', 'make_metafiles.py'))
    configs = {
        osp.relpath(p, REPO)
        for p in glob.glob(
            osp.join(REPO, 'configs', '**', '*.py'), recursive=True
        )
        if '_base_' not in p and not tool['is_alias'](p)
    }
    assert 'configs/quickstart/efficientdet-lite0_1xb8-12e_shapes.py' not in (
        configs
    )
    listed = [m['Config'] for m in indexed_models()]
    assert sorted(listed) == sorted(configs)


def test_official_ap_only_on_the_tf_weights():
    with_ap = {
        m['Name']: m['Results'][0]['Metrics']['box AP']
        for m in indexed_models()
        if 'Results' in m
    }
    assert with_ap['tf_efficientdet_d0_coco'] == 34.3
    assert with_ap['tf_efficientdet_d7x_coco'] == 54.4
    assert all(name.startswith('tf_efficientdet_d') for name in with_ap)
    assert not any('_ap_' in name for name in with_ap)  # AdvProp: not known


@pytest.mark.slow
def test_metafiles_are_up_to_date():
    out = subprocess.run(
        [sys.executable, 'tools/misc/make_metafiles.py', '--check'],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
