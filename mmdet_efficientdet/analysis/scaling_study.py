"""The compound-scaling study at small scale: train, evaluate, compare.

On the embedded shapes dataset (:mod:`mmdet_efficientdet.datasets.shapes`)
a small EfficientDet (:data:`~.study_rules.BASES`) is scaled by width
only, depth only, resolution only and by the compound rule, whose (alpha,
beta, gamma) is grid-searched at phi = 1 as EfficientNet did: each
candidate is trained and scored, the best val bbox mAP wins. Every model is
trained with one schedule and seed, in this process through MMEngine's
``Runner``, and evaluated with COCO bbox mAP on the val split; its MACs are
counted.

The default base keeps the quickstart's ImageNet EfficientNet-Lite0 trunk,
frozen, and the rules scale the BiFPN, the head and the input. Trained
from scratch, no model of this size got past the detector's early plateau
within the default budget (measured on 2 CPU cores: the scratch base
reached val bbox mAP 0.004 after 600 iterations, the frozen-Lite0 base
0.489 after 400). ``'scratch'`` scales the backbone too, for longer
schedules.
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
from .study_rules import (
    BASES,
    RULES,
    SINGLE_RULES,
    Coefficients,
    grid_candidates,
    scale_spec,
    spec_key,
)


class Schedule(Protocol):
    """What every study's setting fixes for all its runs: the schedule
    (epochs, batch, peak SGD learning rate) and the shapes dataset."""

    epochs: int
    batch_size: int
    lr: float
    num_train: int
    num_val: int


class StudySetting(NamedTuple):
    """How much the study trains and which runs it makes.

    Attributes:
        epochs (int): Training epochs of every run (>= 2: one of warm-up).
        batch_size (int): Training batch.
        lr (float): Peak SGD learning rate (one epoch of warm-up from 10%,
            then cosine decay to 0).
        num_train (int): Training images of the shapes dataset.
        num_val (int): Val images (mAP is measured on all of them).
        phis (tuple[float]): Compound coefficients of each rule's runs.
        grid (tuple[tuple[float, float]]): (alpha, beta) candidates of the
            grid search; gamma solves ``alpha * beta ** 2 * gamma ** 2 =
            2``.
    """

    epochs: int
    batch_size: int
    lr: float
    num_train: int
    num_val: int
    phis: Tuple[float, ...]
    grid: Tuple[Tuple[float, float], ...]


# CI: every rule once, 2 epochs of 4 iterations; the mAPs are noise
_SHORT = StudySetting(
    epochs=2,
    batch_size=8,
    lr=0.08,
    num_train=32,
    num_val=16,
    phis=(1.0,),
    grid=((1.2, 1.1), (1.2, 1.2)),
)
SETTINGS: Dict[str, StudySetting] = {
    'short': _SHORT,
    # the study: 11 models of 7 epochs (350 iterations), about 40 min on
    # one core (docs/scaling_explorer.md)
    'default': _SHORT._replace(
        epochs=7,
        num_train=400,
        num_val=100,
        phis=(1.0, 2.0),
        grid=((1.2, 1.1), (1.2, 1.2), (1.4, 1.1)),
    ),
}


class Trained(NamedTuple):
    """What training one model of a study gave."""

    params: int
    macs: int
    metrics: Dict[str, float]  # val metrics, train/first_loss, /last_loss
    seconds: float
    same_as: Optional[str] = None  # the run that trained this very model


class RunResult(NamedTuple):
    """One trained model of the study."""

    name: str
    rule: str  # 'base', 'grid', or one of RULES
    phi: float
    coefficients: Optional[Coefficients]
    spec: EfficientDetSpec
    params: int
    macs: int
    metrics: Dict[str, float]
    seconds: float
    same_as: Optional[str] = None  # the run that trained this very model

    @property
    def bbox_map(self) -> float:
        return self.metrics.get('coco/bbox_mAP', math.nan)


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


def run_study(
    setting: StudySetting,
    base_cfg: dict,
    work_dir: str,
    data_root: str,
    seed: int = 0,
    log: Callable[[str], None] = print,
    base: str = 'frozen-lite0',
) -> Tuple[List[RunResult], Coefficients]:
    """Train every run of ``setting`` from the base model ``base`` (a key
    of :data:`~.study_rules.BASES`); results and the grid's winner.

    Runs whose models coincide (e.g. a compound run and its grid
    candidate) are trained once.
    """
    if base not in BASES:
        raise ValueError(
            f'unknown base model {base!r}; expected one of {list(BASES)}'
        )
    base_spec, frozen = BASES[base]
    ensure_dataset(data_root, setting)
    candidates = grid_candidates(setting.grid)
    if not candidates:
        raise ValueError(
            f'no grid candidate: every (alpha, beta) of {setting.grid} '
            f'leaves gamma < 1'
        )
    phis = [phi for phi in setting.phis if phi > 0]
    trainer = Trainer(1 + len(candidates) + len(phis) * len(RULES), log)
    results: List[RunResult] = []

    def run(
        name: str, rule: str, phi: float, coeffs: Optional[Coefficients]
    ) -> RunResult:
        spec = base_spec
        if coeffs is not None:
            spec = scale_spec(
                base_spec, coeffs, phi, name, scale_backbone=not frozen
            )
        trained = trainer(
            name,
            spec_key(spec),
            lambda: run_config(
                base_cfg,
                spec,
                setting,
                data_root,
                osp.join(work_dir, 'runs', name),
                seed,
                frozen,
            ),
            spec.image_size,
        )
        results.append(RunResult(name, rule, phi, coeffs, spec, *trained))
        return results[-1]

    torch.manual_seed(seed)
    run('base', 'base', 0.0, None)
    grid = [run(f'grid-{i}', 'grid', 1.0, c) for i, c in enumerate(candidates)]
    # highest mAP (a run without one counts as -1), then fewest MACs
    best = max(
        grid,
        key=lambda r: (
            -1.0 if math.isnan(r.bbox_map) else r.bbox_map,
            -r.macs,
        ),
    ).coefficients
    log(f'grid search at phi = 1: best (alpha, beta, gamma) = {best}')
    for phi in phis:
        for rule in RULES:
            coeffs = best if rule == 'compound' else SINGLE_RULES[rule]
            run(f'{rule}-phi{phi:g}', rule, phi, coeffs)
    return results, best
