"""The compound-scaling study at small scale: train, evaluate, compare.

On the embedded shapes dataset (:mod:`mmdet_efficientdet.datasets.shapes`)
a small EfficientDet (:data:`~.study_rules.BASES`) is scaled by width
only, depth only, resolution only and by the compound rule, whose (alpha,
beta, gamma) is grid-searched at phi = 1 as EfficientNet did: each
candidate is trained and scored, the best val bbox mAP wins. Every model is
trained with one schedule and seed, in this process through MMEngine's
``Runner`` (:mod:`.study_runner`), and evaluated with COCO bbox mAP on the
val split; its MACs are counted.

The default base keeps the quickstart's ImageNet EfficientNet-Lite0 trunk,
frozen, and the rules scale the BiFPN, the head and the input. Trained
from scratch, no model of this size got past the detector's early plateau
within the default budget (measured on 2 CPU cores: the scratch base
reached val bbox mAP 0.004 after 600 iterations, the frozen-Lite0 base
0.489 after 400). ``'scratch'`` scales the backbone too, for longer
schedules.
"""

import math
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch

from ..scaling import EfficientDetSpec
from .study_rules import (
    BASES,
    RULES,
    SINGLE_RULES,
    Coefficients,
    grid_candidates,
    scale_spec,
    spec_key,
)
from .study_runner import Trainer, ensure_dataset, run_config


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
