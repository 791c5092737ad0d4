"""The runner the studies share: a study's runs trained one by one.

A study (:mod:`.scaling_study`, :mod:`.neck_study`) trains small
EfficientDets on the embedded shapes dataset
(:mod:`mmdet_efficientdet.datasets.shapes`) with one schedule: each run is
the quickstart's config with the run's model (:func:`run_config`), trained
in this process through MMEngine's ``Runner`` and evaluated with COCO bbox
mAP on the val split (:func:`train_and_evaluate`); :class:`Trainer` counts
its parameters and MACs, trains each model once and logs progress.
"""

import argparse
import contextlib
import copy
import math
import os
import os.path as osp
import statistics
import time
from typing import (
    Callable,
    Dict,
    Hashable,
    List,
    NamedTuple,
    Optional,
    Protocol,
    Tuple,
)

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from ..datasets import make_shapes_dataset
from ..engine.schedules import warmup_cosine
from ..models.backbones.efficientnet_arch import B0_ROWS
from ..package_files import get_config_file
from ..scaling import EfficientDetSpec, scaled_config
from .complexity import count


class Schedule(Protocol):
    """What every study's setting fixes for all its runs: the schedule
    (epochs, batch, peak SGD learning rate) and the shapes dataset."""

    epochs: int
    batch_size: int
    lr: float
    num_train: int
    num_val: int


class Trained(NamedTuple):
    """What training one model of a study gave."""

    params: int
    macs: int
    metrics: Dict[str, float]  # val metrics, train/first_loss, /last_loss
    seconds: float
    same_as: Optional[str] = None  # the run that trained this very model


class _KeepMetrics(Hook):
    """Keeps every training loss and the metrics of the last validation."""

    def __init__(self) -> None:
        self.metrics: Dict[str, float] = {}
        self.losses: List[float] = []

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ) -> None:
        self.losses.append(outputs['loss'].item())

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


QUICKSTART = 'quickstart/efficientdet-lite0_1xb8-12e_shapes'


def add_study_arguments(
    parser: argparse.ArgumentParser,
    settings: Dict[str, Schedule],
    work_dir: str,
) -> None:
    """The options of every study tool: setting, epochs, work dir, data
    root and torch threads."""
    parser.add_argument(
        '--setting', choices=sorted(settings), default='default'
    )
    parser.add_argument(
        '--epochs', type=int, help="override the setting's epochs"
    )
    parser.add_argument('--work-dir', default=work_dir)
    parser.add_argument(
        '--data-root',
        help='shapes dataset (default: data/shapes; short: '
        '<work-dir>/shapes), drawn if missing',
    )
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch threads (default 1: on a busy 2-core machine a second '
        'thread made an iteration 8-27x slower, measured)',
    )


def study_inputs(args: argparse.Namespace) -> Tuple[str, dict]:
    """Set the torch threads and make the work dir of a study tool's
    ``args``; its data root (``data/shapes``, the quickstart's, for the
    default setting; the work dir's for the short one) and the
    quickstart's config, which every run starts from."""
    torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    data_root = args.data_root
    if data_root is None:
        data_root = (
            osp.join(args.work_dir, 'shapes')
            if args.setting == 'short'
            else osp.join('data', 'shapes')
        )
    base_cfg = Config.fromfile(get_config_file(QUICKSTART)).to_dict()
    return data_root, base_cfg


def ensure_dataset(data_root: str, setting: Schedule) -> str:
    """Draw the shapes dataset into ``data_root`` unless it is there."""
    ann = osp.join(data_root, 'annotations', 'val.json')
    if not osp.isfile(ann):
        make_shapes_dataset(data_root, setting.num_train, setting.num_val)
    return data_root


def run_config(
    base_cfg: dict,
    spec: EfficientDetSpec,
    setting: Schedule,
    data_root: str,
    work_dir: str,
    seed: int,
    frozen_backbone: bool = True,
    neck: Optional[dict] = None,
) -> Config:
    """The quickstart's config with ``spec``'s model and the study's
    schedule, data and quiet hooks.

    With ``frozen_backbone`` the backbone keeps ``base_cfg``'s weights (the
    quickstart's ImageNet Lite0 file; ``spec`` must keep its arch) and is
    frozen with its norms; otherwise it starts from scratch. ``neck``
    replaces the spec's BiFPN (the head then reads its ``out_channels``).
    """
    if setting.epochs < 2:
        raise ValueError(
            f'epochs must be >= 2 (one of warm-up), got {setting.epochs}'
        )
    cfg = copy.deepcopy(base_cfg)
    for key, value in scaled_config(cfg, spec).items():
        if isinstance(value, dict):
            value.pop('_delete_', None)
        cfg[key] = value
    if neck is not None:
        cfg['model']['neck'] = copy.deepcopy(neck)
        cfg['model']['bbox_head']['in_channels'] = neck['out_channels']
    backbone = cfg['model']['backbone']
    if frozen_backbone:
        if backbone.get('init_cfg') is None:
            raise ValueError(
                f'a frozen backbone needs the weights of the base config; '
                f'backbone {spec.backbone!r} has none there'
            )
        backbone.update(frozen_stages=len(B0_ROWS), norm_eval=True)
    else:
        backbone['init_cfg'] = None  # no ImageNet weights for this arch
    # stochastic depth regularises long schedules; these runs are short
    backbone['drop_path_rate'] = 0.0
    data_root = data_root.rstrip('/') + '/'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.update(num_workers=0, persistent_workers=False)
        loader['dataset']['data_root'] = data_root
    cfg['train_dataloader']['batch_size'] = setting.batch_size
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key]['ann_file'] = data_root + 'annotations/val.json'
    cfg['train_cfg'] = dict(
        type='EpochBasedTrainLoop',
        max_epochs=setting.epochs,
        val_interval=setting.epochs,
    )
    cfg['optim_wrapper']['optimizer']['lr'] = setting.lr
    cfg['param_scheduler'] = warmup_cosine(0.1)
    # no weight EMA: its 0.9998 averages over more steps than a run has
    cfg['custom_hooks'] = [
        hook for hook in cfg['custom_hooks'] if hook['type'] != 'EMAHook'
    ]
    cfg['default_hooks']['checkpoint'] = dict(
        type='CheckpointHook', interval=-1, save_last=False
    )
    cfg['default_hooks']['logger'] = dict(type='LoggerHook', interval=10)
    cfg['randomness'] = dict(seed=seed)
    cfg['work_dir'] = work_dir
    cfg['experiment_name'] = osp.basename(work_dir)
    # mmengine keeps one visualizer per name: one per run, writing there
    cfg['visualizer'] = dict(cfg['visualizer'], name=osp.basename(work_dir))
    cfg.pop('load_from', None)
    cfg['resume'] = False
    # yapf-formatting the config for the log took half of a short run
    return Config(cfg, format_python_code=False)


def train_and_evaluate(cfg: Config) -> Dict[str, float]:
    """Train ``cfg`` in this process; the val metrics after the last
    epoch and the mean training loss of the first and of the last epoch
    (``train/first_loss``, ``train/last_loss``). Console output goes to
    ``<work_dir>/console.log``."""
    os.makedirs(cfg.work_dir, exist_ok=True)
    keeper = _KeepMetrics()
    loggers = set(MMLogger._instance_dict)
    console = osp.join(cfg.work_dir, 'console.log')
    with open(console, 'w') as out, contextlib.redirect_stdout(out):
        runner = Runner.from_cfg(cfg)
        runner.register_hook(keeper, 'LOWEST')
        runner.train()
    # the run's logger prints to the closed console file and its
    # visualizer holds the run's files: drop both
    visualizer = runner.visualizer
    visualizer.close()
    type(visualizer)._instance_dict.pop(visualizer.instance_name, None)
    for name in set(MMLogger._instance_dict) - loggers:
        logger = MMLogger._instance_dict.pop(name)
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    losses = keeper.losses
    per_epoch = max(1, len(losses) // cfg.train_cfg.max_epochs)
    return dict(
        keeper.metrics,
        **{
            'train/first_loss': statistics.fmean(losses[:per_epoch]),
            'train/last_loss': statistics.fmean(losses[-per_epoch:]),
        },
    )


class Trainer:
    """Trains the runs of a study in turn and logs one line per run with
    its time and an ETA. A run whose model (``key``) was trained already is
    not trained again: it gets that run's results.

    Args:
        total (int): Runs the study will make.
        log (callable): Receives the lines.
    """

    def __init__(self, total: int, log: Callable[[str], None]) -> None:
        self.total = total
        self.log = log
        self.started = 0
        self.trained: Dict[Hashable, Tuple[str, Trained]] = {}

    def __call__(
        self,
        name: str,
        key: Hashable,
        make_cfg: Callable[[], Config],
        image_size: int,
    ) -> Trained:
        """Train run ``name`` (the config from ``make_cfg``) unless its
        model was; params and MACs counted at ``image_size``."""
        self.started += 1
        prefix = f'[{self.started}/{self.total}] {name}'
        if key in self.trained:
            first, trained = self.trained[key]
            self.log(f'{prefix}: same model as {first}, not trained again')
            return trained._replace(seconds=0.0, same_as=first)
        start = time.perf_counter()
        cfg = make_cfg()
        params, macs = count(cfg.model, image_size)
        metrics = train_and_evaluate(cfg)
        trained = Trained(params, macs, metrics, time.perf_counter() - start)
        self.trained[key] = (name, trained)
        bbox_map = metrics.get('coco/bbox_mAP', math.nan)
        self.log(
            f'{prefix}: {macs / 1e6:.1f} M MACs, bbox mAP {bbox_map:.3f}, '
            f'{trained.seconds:.0f} s; {self._eta()}'
        )
        return trained

    def _eta(self) -> str:
        remaining = self.total - self.started
        if remaining <= 0:
            return 'done'
        per_run = statistics.fmean(t.seconds for _, t in self.trained.values())
        return f'ETA {remaining * per_run / 60:.1f} min'
