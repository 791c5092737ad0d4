"""warmup_cosine: the decay follows the config's max_epochs.

The schedulers are built by MMEngine's runner from the real configs (no
training) and stepped per iteration as ``ParamSchedulerHook`` does.
"""

import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import QUICKSTART, REPO, coco_config
from mmdet_efficientdet.datasets import SHAPES_CLASSES, make_shapes_dataset

D0 = coco_config('d0')
D7 = osp.join(
    REPO, 'configs', 'efficientdet', 'efficientdet_d7_8xb16-600e_coco.py'
)
BATCH = 8
NUM_TRAIN = 16
EPOCH_LEN = NUM_TRAIN // BATCH  # iterations per epoch

# a child of a repo config, on a tiny train set: 2 iterations per epoch
CHILD = """
_base_ = {base!r}
train_dataloader = dict(
    batch_size={batch},
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root={root!r},
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes={classes!r}),
        pipeline=[],
    ),
)
{extra}
"""


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    make_shapes_dataset(
        str(root), num_train=NUM_TRAIN, num_val=1, image_size=64
    )
    return str(root) + '/'


def lr_per_iteration(base, extra, root, tmp_path):
    """The lr each training iteration runs at, and the config's base lr."""
    path = tmp_path / 'child.py'
    path.write_text(
        CHILD.format(
            base=base,
            batch=BATCH,
            root=root,
            classes=SHAPES_CLASSES,
            extra=extra,
        )
    )
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(tmp_path / 'work')
    # one visualizer instance per name in mmengine: a fresh one per runner
    cfg.visualizer['name'] = str(tmp_path)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    # what Runner.train() builds before its loop
    loop = runner.train_loop
    assert len(runner.train_dataloader) == EPOCH_LEN
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    schedulers = runner.build_param_scheduler(cfg.param_scheduler)
    lrs = []
    for _ in range(loop.max_epochs * EPOCH_LEN):
        lrs.append(runner.optim_wrapper.param_groups[0]['lr'])
        for scheduler in schedulers:
            assert not scheduler.by_epoch  # all converted to iterations
            scheduler.step()
    return lrs, cfg.optim_wrapper.optimizer.lr


def expected_lr(t, base, start_factor, max_epochs):
    """One epoch of linear warm-up (MMEngine's LinearLR reaches the full lr
    at the epoch's last iteration), then cosine to 0 at max_epochs."""
    if t < EPOCH_LEN:
        warmed = t / (EPOCH_LEN - 1)
        return base * (start_factor + (1 - start_factor) * warmed)
    progress = (t - EPOCH_LEN) / ((max_epochs - 1) * EPOCH_LEN)
    return base * 0.5 * (1 + math.cos(math.pi * progress))


def at(epoch, fraction):
    """The iteration ``fraction`` through the 1-based ``epoch``."""
    return (epoch - 1) * EPOCH_LEN + int(fraction * (EPOCH_LEN - 1))


@pytest.mark.parametrize(
    'base, start_factor',
    [(QUICKSTART, 0.1), (D0, 0.008 / 0.16)],
    ids=['quickstart', 'd0'],
)
def test_child_with_more_epochs_decays_over_them(
    base, start_factor, shapes_root, tmp_path
):
    lrs, base_lr = lr_per_iteration(
        base, 'train_cfg = dict(max_epochs=24)', shapes_root, tmp_path
    )
    assert len(lrs) == 24 * EPOCH_LEN
    # half way through the cosine: half the lr, not the ~0 of the parent's
    # 12-epoch decay (or the ~full lr of a 300-epoch one)
    assert 0.45 * base_lr < lrs[at(13, 0.5)] < 0.55 * base_lr
    # near 0 only in the last epoch: 0.5 (1 - cos(pi k / 46)) x lr, k = 2
    # at the end of epoch 23 (0.0047), k = 1 at the last iteration (0.0012)
    assert min(lrs[: 23 * EPOCH_LEN]) > 4e-3 * base_lr
    assert lrs[-1] < 2e-3 * base_lr
    for t in range(len(lrs)):
        assert lrs[t] == pytest.approx(
            expected_lr(t, base_lr, start_factor, 24), rel=1e-6, abs=1e-12
        ), t


@pytest.mark.parametrize(
    'base, max_epochs, lr, start_factor',
    [
        (QUICKSTART, 12, 0.04, 0.1),
        (D0, 300, 0.16, 0.05),
        # builds D7 (52M parameters): 5 s
        pytest.param(D7, 600, 0.16, 0.05, marks=pytest.mark.slow),
    ],
    ids=['quickstart', 'd0', 'd7'],
)
def test_unchanged_configs_keep_their_schedule(
    base, max_epochs, lr, start_factor, shapes_root, tmp_path
):
    lrs, base_lr = lr_per_iteration(base, '', shapes_root, tmp_path)
    assert base_lr == lr
    assert len(lrs) == max_epochs * EPOCH_LEN
    cosine_len = (max_epochs - 1) * EPOCH_LEN
    points = {
        0: start_factor * lr,  # warm-up starts
        EPOCH_LEN - 1: lr,  # warm-up done
        EPOCH_LEN: lr,  # cosine starts
        EPOCH_LEN + cosine_len // 2: lr / 2,  # half way through cosine
        # the last iteration: 0.5 (1 + cos(pi (T - 1) / T)) x lr
        len(lrs) - 1: lr / 2 * (1 - math.cos(math.pi / cosine_len)),
    }
    for t, value in points.items():
        assert lrs[t] == pytest.approx(value, rel=1e-6), t
    for t in range(len(lrs)):
        assert lrs[t] == pytest.approx(
            expected_lr(t, base_lr, start_factor, max_epochs),
            rel=1e-6,
            abs=1e-12,
        ), t


def test_warm_up_only_run(shapes_root, tmp_path):
    """A one-epoch smoke run ends with the warm-up: no cosine to build."""
    lrs, base_lr = lr_per_iteration(
        QUICKSTART, 'train_cfg = dict(max_epochs=1)', shapes_root, tmp_path
    )
    assert lrs == pytest.approx(
        [expected_lr(t, base_lr, 0.1, 1) for t in range(EPOCH_LEN)]
    )
