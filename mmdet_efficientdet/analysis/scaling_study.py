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

import contextlib
import copy
import math
import os
import os.path as osp
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from ..datasets import make_shapes_dataset
from ..engine.schedules import warmup_cosine
from ..models.backbones.efficientnet_arch import B0_ROWS
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


class _KeepValMetrics(Hook):
    """Keeps the metrics of the last validation."""

    def __init__(self) -> None:
        self.metrics: Dict[str, float] = {}

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


def ensure_dataset(data_root: str, setting: StudySetting) -> str:
    """Draw the shapes dataset into ``data_root`` unless it is there."""
    ann = osp.join(data_root, 'annotations', 'val.json')
    if not osp.isfile(ann):
        make_shapes_dataset(data_root, setting.num_train, setting.num_val)
    return data_root


def run_config(
    base_cfg: dict,
    spec: EfficientDetSpec,
    setting: StudySetting,
    data_root: str,
    work_dir: str,
    seed: int,
    frozen_backbone: bool = True,
) -> Config:
    """The quickstart's config with ``spec``'s model and the study's
    schedule, data and quiet hooks.

    With ``frozen_backbone`` the backbone keeps ``base_cfg``'s weights (the
    quickstart's ImageNet Lite0 file; ``spec`` must keep its arch) and is
    frozen with its norms; otherwise it starts from scratch."""
    if setting.epochs < 2:
        raise ValueError(
            f'epochs must be >= 2 (one of warm-up), got {setting.epochs}'
        )
    cfg = copy.deepcopy(base_cfg)
    for key, value in scaled_config(cfg, spec).items():
        if isinstance(value, dict):
            value.pop('_delete_', None)
        cfg[key] = value
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
    epoch. Console output goes to ``<work_dir>/console.log``."""
    os.makedirs(cfg.work_dir, exist_ok=True)
    keeper = _KeepValMetrics()
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
    return keeper.metrics


def _eta(done: List[RunResult], remaining: int) -> str:
    if not done or remaining <= 0:
        return 'done'
    per_run = sum(r.seconds for r in done) / len(done)
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
    total = 1 + len(candidates) + len(phis) * len(RULES)
    results: List[RunResult] = []
    trained: Dict[Tuple, RunResult] = {}

    def run(
        name: str, rule: str, phi: float, coeffs: Optional[Coefficients]
    ) -> RunResult:
        spec = base_spec
        if coeffs is not None:
            spec = scale_spec(
                base_spec, coeffs, phi, name, scale_backbone=not frozen
            )
        key = spec_key(spec)
        if key in trained:
            same = trained[key]
            result = same._replace(
                name=name,
                rule=rule,
                phi=phi,
                coefficients=coeffs,
                seconds=0.0,
                same_as=same.name,
            )
            log(
                f'[{len(results) + 1}/{total}] {name}: same model as '
                f'{same.name}, not trained again'
            )
        else:
            start = time.perf_counter()
            cfg = run_config(
                base_cfg,
                spec,
                setting,
                data_root,
                osp.join(work_dir, 'runs', name),
                seed,
                frozen,
            )
            params, macs = count(cfg.model, spec.image_size)
            metrics = train_and_evaluate(cfg)
            result = RunResult(
                name,
                rule,
                phi,
                coeffs,
                spec,
                params,
                macs,
                metrics,
                time.perf_counter() - start,
            )
            trained[key] = result
            done = [r for r in results if r.seconds > 0] + [result]
            log(
                f'[{len(results) + 1}/{total}] {name}: {macs / 1e6:.1f} M '
                f'MACs, bbox mAP {result.bbox_map:.3f}, '
                f'{result.seconds:.0f} s; '
                f'{_eta(done, total - len(results) - 1)}'
            )
        results.append(result)
        return result

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
