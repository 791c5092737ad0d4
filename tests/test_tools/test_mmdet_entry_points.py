"""mmdet's own entry points load a checkpoint of this project's training.

In a subprocess with a clean environment (weights-only loading left on,
no ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), importing nothing of ours but
what the config's ``custom_imports`` brings: mmdet's ``init_detector`` +
``inference_detector``, ``DetInferencer`` and mmdet's stock
``tools/test.py`` give the detections of this project's ``tools/test.py``.
"""

import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import mmdet
import numpy as np
import pytest
import torch

import mmdet_efficientdet  # noqa: F401  (weights-only allow-list here too)
from helpers import REPO

pytestmark = pytest.mark.slow

MMDET_APIS = """
import json, sys
from mmdet.apis import DetInferencer, inference_detector, init_detector
config, ckpt, out, *images = sys.argv[1:]
model = init_detector(config, ckpt, device='cpu')
api = [inference_detector(model, image) for image in images]
inferencer = DetInferencer(model=config, weights=ckpt, device='cpu',
                           show_progress=False)
preds = inferencer(images, no_save_pred=True)['predictions']
def plain(instances):
    return dict(bboxes=instances.bboxes.tolist(),
                scores=instances.scores.tolist(),
                labels=instances.labels.tolist())
json.dump(dict(
    init_detector=[plain(r.pred_instances) for r in api],
    DetInferencer=[dict(bboxes=p['bboxes'], scores=p['scores'],
                        labels=p['labels']) for p in preds],
), open(out, 'w'))
"""


# every path runs images one at a time on one thread, as the APIs do, so
# that near-tied scores of a barely trained model come out the same
ONE_BY_ONE = ('--cfg-options', 'test_dataloader.batch_size=1')


def clean_env() -> dict:
    keep = ('PATH', 'HOME', 'PYTHONPATH', 'LANG', 'TMPDIR')
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env['OMP_NUM_THREADS'] = '1'
    return env


def run_clean(args, cwd):
    out = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return out.stdout + out.stderr


def by_image(results):
    """``tools/test.py --out`` results keyed by image path."""
    return {
        r['img_path']: dict(
            bboxes=r['pred_instances']['bboxes'].numpy(),
            scores=r['pred_instances']['scores'].numpy(),
            labels=r['pred_instances']['labels'].numpy(),
        )
        for r in results
    }


def rows(result):
    """Detections as (label, score, x1, y1, x2, y2) rows."""
    return np.concatenate(
        [
            np.asarray(result['labels'], dtype=np.float64)[:, None],
            np.asarray(result['scores'], dtype=np.float64)[:, None],
            np.asarray(result['bboxes'], dtype=np.float64).reshape(-1, 4),
        ],
        axis=1,
    )


def assert_same(ours, theirs, image_size, where):
    """One-to-one: each of our detections is one of theirs with the same
    label, score within 1e-4 and box within 1e-3 of the image size (an
    untrained model ties scores, and tied detections come in any order)."""
    ours, theirs = rows(ours), rows(theirs)
    assert len(ours) > 0 and ours.shape == theirs.shape, where
    free = np.ones(len(theirs), dtype=bool)
    for row in ours:
        close = (
            free
            & (theirs[:, 0] == row[0])
            & (np.abs(theirs[:, 1] - row[1]) <= 1e-4)
            & (np.abs(theirs[:, 2:] - row[2:]).max(1) <= 1e-3 * image_size)
        )
        assert close.any(), (
            f'{where}: {row} not among theirs; ours {ours[:5, :2]}, '
            f'theirs {theirs[:5, :2]}'
        )
        free[np.flatnonzero(close)[0]] = False


@pytest.fixture(scope='module')
def spread_checkpoint(tiny_checkpoint, tmp_path_factory):
    """The tiny run's checkpoint, message hub and all, with the class
    prediction drawn at random: after a few iterations every score is
    still the prior's 0.01, and which of the tied boxes makes the top 100
    would depend on float noise (threads, batch size)."""
    ckpt = torch.load(tiny_checkpoint, map_location='cpu')
    generator = torch.Generator().manual_seed(0)
    for key in ckpt['state_dict']:
        if key.startswith('bbox_head.conv_cls.pointwise_conv.conv.'):
            value = ckpt['state_dict'][key]
            ckpt['state_dict'][key] = 0.2 * torch.randn(
                value.shape, generator=generator
            )
    path = str(tmp_path_factory.mktemp('spread') / 'epoch_1.pth')
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope='module')
def our_results(tiny_config, spread_checkpoint, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('ours') / 'results.pkl')
    run_clean(
        [
            osp.join(REPO, 'tools', 'test.py'),
            tiny_config,
            spread_checkpoint,
            '--out',
            out,
            *ONE_BY_ONE,
        ],
        cwd=REPO,
    )
    with open(out, 'rb') as f:
        return by_image(pickle.load(f))


def test_mmdet_apis_give_our_detections(
    tiny_config, spread_checkpoint, our_results, tmp_path
):
    images = sorted(our_results)[:3]
    out = str(tmp_path / 'apis.json')
    run_clean(
        ['-c', MMDET_APIS, tiny_config, spread_checkpoint, out, *images],
        cwd=str(tmp_path),
    )
    with open(out) as f:
        theirs = json.load(f)
    for api in ('init_detector', 'DetInferencer'):
        for image, result in zip(images, theirs[api]):
            assert_same(our_results[image], result, 128, f'{api} {image}')


STOCK_TEST = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')


@pytest.mark.skipif(
    not osp.isfile(STOCK_TEST), reason='mmdet installed without .mim tools'
)
def test_mmdet_stock_test_tool_gives_our_detections(
    tiny_config, spread_checkpoint, our_results, tmp_path
):
    out = str(tmp_path / 'stock.pkl')
    log = run_clean(
        [
            STOCK_TEST,
            tiny_config,
            spread_checkpoint,
            '--out',
            out,
            '--work-dir',
            str(tmp_path / 'work'),
            *ONE_BY_ONE,
        ],
        cwd=str(tmp_path),
    )
    assert 'bbox_mAP' in log
    with open(out, 'rb') as f:
        stock = by_image(pickle.load(f))
    assert set(stock) == set(our_results)
    for image, result in stock.items():
        assert_same(our_results[image], result, 128, f'stock {image}')


def test_test_tool_tta(tiny_config, tiny_checkpoint, run_tool, tmp_path):
    log = run_tool(
        'tools/test.py',
        tiny_config,
        tiny_checkpoint,
        '--tta',
        '--work-dir',
        str(tmp_path),
    )
    assert 'bbox_mAP' in log
    # both views of each of the 8 val images went through the model
    assert '[8/8]' in log or 'bbox_mAP_50' in log
