"""The neck study: FPN, PAFPN and BiFPN side by side at matched cost.

EfficientDet (Tan, Pang & Le, CVPR 2020, section 3, tables 4 and 5)
argues that a learned weighted sum of feature maps beats a plain sum and
that BiFPN's topology beats FPN and PANet in accuracy per parameter and
per FLOP. Here the scaling study's frozen-Lite0 base
(:data:`~.study_rules.BASES`: the quickstart's ImageNet EfficientNet-Lite0
backbone, frozen; EfficientDet's head of 3 separable convs, 32 wide;
128 px input, P3-P5) is trained on the shapes dataset with each neck of
:data:`NECKS`, with one schedule, data set and seed set
(:mod:`.scaling_study`'s runner).

Widths are matched: every neck's width is the one whose MACs (or
parameters) come closest to the reference's, BiFPN with fast fusion and 3
layers at the given width; the head keeps its width and reads the neck's
channels. A neck's costs are quadratic in its width (convolutions between
its own channels, from the backbone's, depthwise) but where the width
equals a backbone level's channels and BiFPN needs no projection there:
counts at three widths (:func:`~.complexity.count_neck`) give the curve,
the curve gives a width, and the widths around it are counted.
"""

import functools
import math
import os.path as osp
from fractions import Fraction
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..models.necks import FUSION_METHODS
from .complexity import count_neck
from .costs import latencies
from .scaling_study import SETTINGS
from .study_rules import BASES, spec_key
from .study_runner import Trainer, ensure_dataset, run_config

BASE = 'frozen-lite0'
MIN_WIDTH, MAX_WIDTH = 8, 512
TOLERANCE = 0.1  # the largest relative cost difference to the reference
MATCH = ('macs', 'params')  # what a width is matched by (Matched's fields)


class Neck(NamedTuple):
    """A neck of the study: an mmdet neck type and, for BiFPN, how it
    fuses and how many layers it repeats."""

    type: str
    fusion: str = 'fast'
    num_stages: int = 3


NECKS: Dict[str, Neck] = {
    'fpn': Neck('FPN'),
    'pafpn': Neck('PAFPN'),
    **{f'bifpn-{m}': Neck('BiFPNNeck', m) for m in sorted(FUSION_METHODS)},
    **{f'bifpn-x{n}': Neck('BiFPNNeck', 'fast', n) for n in (1, 2, 3)},
}
REFERENCE = 'bifpn-fast'


class NeckSetting(NamedTuple):
    """Schedule, data, seeds and latency repetitions of the neck study
    (the first five a :class:`~.study_runner.Schedule`)."""

    epochs: int
    batch_size: int
    lr: float
    num_train: int
    num_val: int
    seeds: Tuple[int, ...]
    reps: int  # timed forwards per latency, interleaved across necks


def _scaling_schedule(name: str, **changes) -> NeckSetting:
    """The scaling study's setting ``name``'s schedule and data."""
    s = SETTINGS[name]
    return NeckSetting(
        s.epochs, s.batch_size, s.lr, s.num_train, s.num_val, **changes
    )


NECK_SETTINGS: Dict[str, NeckSetting] = {
    # CI: each neck once, 2 epochs of 4 iterations; the mAPs are noise
    'short': _scaling_schedule('short', seeds=(0,), reps=3),
    # 7 models (bifpn-fast is bifpn-x3) x 2 seeds of 12 epochs (600
    # iterations): 40-50 min on 2 cores, estimated from the short
    # setting's 0.26-0.37 s per iteration (docs/neck_study.md)
    'default': _scaling_schedule('default', seeds=(0, 1), reps=20)._replace(
        epochs=12
    ),
}


class Matched(NamedTuple):
    """A neck at its matched width, with its own counted costs."""

    width: int
    params: int
    macs: int


def check_necks(names: Sequence[str]) -> List[str]:
    """``names`` if each is a key of :data:`NECKS` (no repeats)."""
    unknown = [n for n in names if n not in NECKS]
    if unknown or not names:
        raise ValueError(
            f'unknown necks {unknown}; expected some of {list(NECKS)}'
            if unknown
            else f'give at least one neck of {list(NECKS)}'
        )
    return list(dict.fromkeys(names))


def neck_cfg(bifpn: dict, neck: Neck, width: int) -> dict:
    """The config of ``neck`` at ``width``, on the inputs of the base
    config's BiFPN ``bifpn``. FPN and PAFPN keep mmdet's defaults (no
    activation, extra levels by max-pooling) with the BiFPN's norm."""
    if neck.type == 'BiFPNNeck':
        return dict(
            bifpn,
            out_channels=width,
            fusion=neck.fusion,
            num_stages=neck.num_stages,
        )
    return dict(
        type=neck.type,
        in_channels=list(bifpn['in_channels']),
        out_channels=width,
        num_outs=bifpn['num_outs'],
        norm_cfg=bifpn['norm_cfg'],
    )


class _CostCurve:
    """A neck's params and MACs at any width, from counts at three: the
    quadratic ``a * w ** 2 + b * w + c`` through them, per cost."""

    def __init__(self, count: Callable[[int], Matched]) -> None:
        w1, w2, w3 = MIN_WIDTH, 2 * MIN_WIDTH, 3 * MIN_WIDTH
        counts = [count(w) for w in (w1, w2, w3)]
        self.coefficients = {}
        for kind in MATCH:
            y1, y2, y3 = (Fraction(getattr(c, kind)) for c in counts)
            a = ((y3 - y2) / (w3 - w2) - (y2 - y1) / (w2 - w1)) / (w3 - w1)
            b = (y2 - y1) / (w2 - w1) - a * (w1 + w2)
            self.coefficients[kind] = (a, b, y1 - a * w1**2 - b * w1)

    def __call__(self, width: int, kind: str) -> int:
        a, b, c = self.coefficients[kind]
        return round(a * width**2 + b * width + c)

    def closest(self, target: float, kind: str) -> Tuple[int, float]:
        """The width in ``MIN_WIDTH``-``MAX_WIDTH`` whose cost is nearest
        ``target`` (costs grow with the width), and its relative
        difference to it."""
        a, b, c = (float(x) for x in self.coefficients[kind])
        if a > 0:
            root = (-b + math.sqrt(max(b * b - 4 * a * (c - target), 0))) / (
                2 * a
            )
        else:
            root = (target - c) / b
        candidates = {
            min(max(w, MIN_WIDTH), MAX_WIDTH)
            for w in (math.floor(root), math.ceil(root))
        }
        width = min(candidates, key=lambda w: abs(self(w, kind) - target))
        return width, self(width, kind) / target - 1


def _ranges(values: Sequence[int]) -> str:
    runs: List[List[int]] = []
    for v in values:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ', '.join(
        str(r[0]) if len(r) == 1 else f'{r[0]}-{r[-1]}' for r in runs
    )


def match_widths(
    bifpn: dict,
    necks: Sequence[str],
    width: int,
    match: str = 'macs',
    image_size: int = BASES[BASE].spec.image_size,
) -> Tuple[Dict[str, Matched], int]:
    """Each neck's width whose ``match`` cost (``'macs'`` or
    ``'params'``) is closest to the reference's at ``width``, and that
    cost of the reference.

    Raises:
        ValueError: An unknown neck or cost, or a width at which some neck
            cannot come within :data:`TOLERANCE` of the reference (the
            message names the widths at which all can).
    """
    necks = check_necks(necks)
    if match not in MATCH:
        raise ValueError(f'unknown cost {match!r}; expected one of {MATCH}')
    # P3, P4, P5 of the backbone
    sizes = [math.ceil(image_size / 2**level) for level in (3, 4, 5)]

    def costs(name: str, w: int) -> Matched:
        cfg = neck_cfg(bifpn, NECKS[name], w)
        return Matched(w, *count_neck(cfg, bifpn['in_channels'], sizes))

    curves = {
        n: _CostCurve(functools.partial(costs, n)) for n in {*necks, REFERENCE}
    }

    def fits(ref_width: int) -> bool:
        target = curves[REFERENCE](ref_width, match)
        return all(
            abs(curves[n].closest(target, match)[1]) <= TOLERANCE
            for n in necks
        )

    valid = f'{MIN_WIDTH}-{MAX_WIDTH}'
    if not (isinstance(width, int) and MIN_WIDTH <= width <= MAX_WIDTH):
        raise ValueError(f'width must be an integer in {valid}, got {width}')
    target = getattr(costs(REFERENCE, width), match)
    out = {}
    for name in necks:
        guess, _ = curves[name].closest(target, match)
        best = min(
            (
                costs(name, w)
                for w in range(
                    max(guess - 1, MIN_WIDTH), min(guess + 1, MAX_WIDTH) + 1
                )
            ),
            key=lambda m: abs(getattr(m, match) - target),
        )
        diff = getattr(best, match) / target - 1
        if abs(diff) > TOLERANCE:
            ok = [w for w in range(MIN_WIDTH, MAX_WIDTH + 1) if fits(w)]
            raise ValueError(
                f'neck {name!r} cannot match the {match} of {REFERENCE} at '
                f'width {width} ({target:,}) within {TOLERANCE:.0%}: its '
                f'closest width in {valid}, {best.width}, is off by '
                f'{diff:+.0%}. Widths at which every neck of {necks} '
                f'matches (by the fitted curves): {_ranges(ok) or "none"}'
            )
        out[name] = best
    return out, target


class NeckRun(NamedTuple):
    """One trained model of the neck study."""

    name: str  # '<neck>-seed<seed>'
    neck: str
    seed: int
    width: int
    params: int
    macs: int
    metrics: Dict[str, float]
    seconds: float
    same_as: Optional[str] = None

    @property
    def bbox_map(self) -> float:
        return self.metrics.get('coco/bbox_mAP', math.nan)


class NeckStudy(NamedTuple):
    """What :func:`run_neck_study` found."""

    runs: List[NeckRun]
    matched: Dict[str, Matched]
    latency: Dict[str, float]  # seconds per forward, batch 1
    width: int  # of the reference
    match: str
    target: int  # the reference's cost that the widths match


def run_neck_study(
    setting: NeckSetting,
    base_cfg: dict,
    work_dir: str,
    data_root: str,
    necks: Sequence[str] = tuple(NECKS),
    width: int = 32,
    match: str = 'macs',
    log: Callable[[str], None] = print,
) -> NeckStudy:
    """Train every neck with every seed of ``setting``; time each model.

    Necks that are the same model (``bifpn-fast`` and ``bifpn-x3``) are
    trained once per seed.
    """
    spec, frozen = BASES[BASE]
    bifpn = run_config(
        base_cfg, spec, setting, data_root, work_dir, 0, frozen
    ).model.neck.to_dict()
    matched, target = match_widths(bifpn, necks, width, match, spec.image_size)
    for name, m in matched.items():
        log(
            f'{name}: width {m.width}, {m.params:,} params, '
            f'{m.macs / 1e6:.2f} M MACs'
        )
    ensure_dataset(data_root, setting)

    def config(name: str, seed: int, run_dir: str):
        neck = neck_cfg(bifpn, NECKS[name], matched[name].width)
        return run_config(
            base_cfg, spec, setting, data_root, run_dir, seed, frozen, neck
        )

    trainer = Trainer(len(matched) * len(setting.seeds), log)
    runs = []
    for seed in setting.seeds:
        for name, m in matched.items():
            run = f'{name}-seed{seed}'
            key = (spec_key(spec), NECKS[name], m.width, seed)
            trained = trainer(
                run,
                key,
                functools.partial(
                    config, name, seed, osp.join(work_dir, 'runs', run)
                ),
                spec.image_size,
            )
            runs.append(NeckRun(run, name, seed, m.width, *trained))
    log(f'timing the forward of each model ({setting.reps} interleaved)')
    latency = latencies(
        {n: config(n, 0, work_dir).model for n in matched},
        spec.image_size,
        reps=setting.reps,
    )
    return NeckStudy(runs, matched, latency, width, match, target)
