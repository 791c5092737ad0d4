"""The studies' tables (markdown), plots (PNG) and raw results (JSON)."""

import json
import math
import statistics
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from .neck_study import BASE, REFERENCE, NeckRun, NeckSetting, NeckStudy
from .scaling_study import RunResult, StudySetting
from .study_rules import BASES, RULES, Coefficients, describe

MAP_50 = 'coco/bbox_mAP_50'
FIRST_LOSS, LAST_LOSS = 'train/first_loss', 'train/last_loss'
COST_LABELS = dict(macs='MACs', params='parameters')
# line style per rule; the grid candidates are drawn as open markers
STYLES = {
    'width': 's--',
    'depth': '^--',
    'resolution': 'd--',
    'compound': 'o-',
}


def _coefficients(result: RunResult) -> str:
    c = result.coefficients
    if c is None:
        return '-'
    return f'{c.alpha:.3g} / {c.beta:.3g} / {c.gamma:.3g}'


def _map(value: float) -> str:
    return 'n/a' if math.isnan(value) else f'{value:.3f}'


def _row(result: RunResult) -> str:
    map50 = result.metrics.get(MAP_50, math.nan)
    if result.same_as:
        seconds = f'(= {result.same_as})'
    else:
        seconds = f'{result.seconds:.0f}'
    return (
        f'| {result.name} | {result.rule} | {result.phi:g} | '
        f'{_coefficients(result)} | {describe(result.spec)} | '
        f'{result.params:,} | {result.macs / 1e6:.1f} | '
        f'{_map(result.bbox_map)} | {_map(map50)} | {seconds} |'
    )


HEADER = (
    '| run | rule | phi | alpha / beta / gamma | model | params | MMACs '
    '| bbox mAP | mAP_50 | train s |\n'
    '|---|---|---|---|---|---|---|---|---|---|'
)


def markdown(
    results: Sequence[RunResult],
    best: Coefficients,
    setting_name: str,
    setting: StudySetting,
    seconds: float,
    base: str = 'frozen-lite0',
) -> str:
    """The study as a markdown document."""
    base_spec, frozen = BASES[base]
    grid = [r for r in results if r.rule == 'grid']
    rules = [r for r in results if r.rule in ('base',) + RULES]
    if frozen:
        backbone = (
            'The backbone is the ImageNet EfficientNet-Lite0 of the '
            'quickstart, frozen (weights and norms) in every run; the rules '
            'scale what the detector adds.'
        )
        scaled = ''
    else:
        backbone = 'Every model is trained from scratch.'
        scaled = 'backbone depth multiplier, '
    lines = [
        '# Compound-scaling study (shapes dataset)',
        '',
        f'Setting `{setting_name}`, base `{base}`: {setting.epochs} epochs '
        f'of {setting.num_train} training images at batch '
        f'{setting.batch_size}, SGD lr {setting.lr}; bbox mAP on '
        f'{setting.num_val} val images. MACs at batch 1, 3 classes, at '
        f"each run's input size.",
        '',
        f'Base model (phi 0): {describe(base_spec)}, '
        f'P3-P{base_spec.max_level}. {backbone}',
        f'A rule scales depth by alpha ** phi ({scaled}BiFPN layers, head '
        f'convs), width by beta ** phi ('
        + ('' if frozen else 'backbone width multiplier, ')
        + 'BiFPN / head channels) and the input by gamma ** phi; the sizes '
        'are then rounded (channels to multiples of 8, layers to integers, '
        f'the input to a multiple of {base_spec.strides[-1]}).',
        '',
        '## Grid search at phi = 1 (alpha * beta^2 * gamma^2 ~= 2)',
        '',
        HEADER,
        *[_row(r) for r in grid],
        '',
        f'Best: (alpha, beta, gamma) = {best} (highest bbox mAP).',
        '',
        '## Rules',
        '',
        'width only: (1, sqrt 2, 1); depth only: (2, 1, 1); resolution '
        "only: (1, 1, sqrt 2); compound: the grid search's best. Each "
        'would double the FLOPs of the scaled parts per unit of phi; the '
        'MACs column has what they cost.',
        '',
        HEADER,
        *[_row(r) for r in rules],
        '',
        f'Total time: {seconds / 60:.1f} min.',
    ]
    return '\n'.join(lines) + '\n'


class Series(NamedTuple):
    """One line (or set of markers) of a plot."""

    x: Sequence[float]
    y: Sequence[float]
    style: str  # matplotlib's fmt, e.g. 'o-'
    label: str
    yerr: Optional[Sequence[float]] = None
    options: Optional[dict] = None  # more keywords of ``Axes.errorbar``


def plot_series(
    path: str,
    series: Sequence[Series],
    xlabel: str,
    ylabel: str,
    title: str,
    log_y: bool = False,
    ylim: Optional[Tuple[float, float]] = None,
) -> None:
    """Write a PNG of ``series`` (the analysis tools' one plot)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for s in series:
        ax.errorbar(
            s.x,
            s.y,
            yerr=s.yerr,
            fmt=s.style,
            label=s.label,
            capsize=3,
            **(s.options or {}),
        )
    if log_y:
        ax.set_yscale('log')
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def map_ylim(maps: Sequence[float]) -> Tuple[float, float]:
    """From 0 to a little above the best mAP (nan ignored)."""
    return 0.0, max([m for m in maps if not math.isnan(m)] + [0.05]) * 1.1


def plot(results: Sequence[RunResult], path: str) -> None:
    """bbox mAP against MACs, one line per rule from the base model."""
    base = [r for r in results if r.rule == 'base']
    series = []
    for rule in RULES:
        runs = base + sorted(
            (r for r in results if r.rule == rule), key=lambda r: r.phi
        )
        series.append(
            Series(
                [r.macs / 1e6 for r in runs],
                [r.bbox_map for r in runs],
                STYLES[rule],
                f'{rule} only' if rule != 'compound' else rule,
            )
        )
    grid = [r for r in results if r.rule == 'grid']
    if grid:
        series.append(
            Series(
                [r.macs / 1e6 for r in grid],
                [r.bbox_map for r in grid],
                'o',
                'grid candidates (phi 1)',
                options=dict(mfc='none', color='gray'),
            )
        )
    plot_series(
        path,
        series,
        'MMACs (batch 1)',
        'val bbox mAP',
        'Scaling a small EfficientDet on the shapes dataset',
        ylim=map_ylim([r.bbox_map for r in results]),
    )


def to_json(results: Sequence[RunResult], best: Coefficients) -> str:
    """The results as JSON (specs as dicts)."""
    runs: List[Dict] = []
    for r in results:
        runs.append(
            dict(
                name=r.name,
                rule=r.rule,
                phi=r.phi,
                coefficients=None
                if r.coefficients is None
                else r.coefficients._asdict(),
                spec=r.spec._asdict(),
                params=r.params,
                macs=r.macs,
                metrics=r.metrics,
                seconds=r.seconds,
            )
        )
    return json.dumps(dict(best=best._asdict(), runs=runs), indent=1)


def _by_neck(study: NeckStudy) -> Dict[str, List[NeckRun]]:
    runs: Dict[str, List[NeckRun]] = {name: [] for name in study.matched}
    for run in study.runs:
        runs[run.neck].append(run)
    return runs


def _spread(values: Sequence[float]) -> str:
    """Mean, and (min-max) over more than one seed."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return 'n/a'
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f'{mean:.3f}'
    return f'{mean:.3f} ({min(values):.3f}-{max(values):.3f})'


def _mean(runs: Sequence[NeckRun], key: str) -> float:
    return statistics.fmean(r.metrics.get(key, math.nan) for r in runs)


def neck_markdown(
    study: NeckStudy, setting_name: str, setting: NeckSetting, seconds: float
) -> str:
    """The neck study as a markdown document."""
    spec = BASES[BASE].spec
    cost = COST_LABELS[study.match]
    rows = []
    for name, runs in _by_neck(study).items():
        m, first = study.matched[name], runs[0]
        rows.append(
            f'| {name} | {m.width} | {m.params:,} | {m.macs / 1e6:.2f} | '
            f'{first.params:,} | {first.macs / 1e6:.1f} | '
            f'{study.latency[name] * 1e3:.1f} | '
            f'{_spread([r.bbox_map for r in runs])} | '
            f'{_spread([r.metrics.get(MAP_50, math.nan) for r in runs])} | '
            f'{_mean(runs, FIRST_LOSS):.3f} -> {_mean(runs, LAST_LOSS):.3f} |'
        )
    per_run = [
        f'| {r.name} | {r.neck} | {r.seed} | {_map(r.bbox_map)} | '
        f'{_map(r.metrics.get(MAP_50, math.nan))} | '
        f'{r.metrics[FIRST_LOSS]:.3f} -> {r.metrics[LAST_LOSS]:.3f} | '
        + (f'(= {r.same_as})' if r.same_as else f'{r.seconds:.0f}')
        + ' |'
        for r in study.runs
    ]
    seeds = ', '.join(str(s) for s in setting.seeds)
    lines = [
        '# Neck study (shapes dataset)',
        '',
        f'Setting `{setting_name}`: {setting.epochs} epochs of '
        f'{setting.num_train} training images at batch '
        f'{setting.batch_size}, SGD lr {setting.lr}, seeds {seeds}; bbox '
        f'mAP on {setting.num_val} val images (mean, and min-max over the '
        f'seeds). Every model: the ImageNet EfficientNet-Lite0 backbone, '
        f"frozen; EfficientDet's head ({spec.head_convs} separable convs, "
        f"{spec.width} wide, reading the neck's channels); "
        f'{spec.image_size} px input, P3-P{spec.max_level}; 3 classes.',
        '',
        f"Widths matched by the neck's {cost}: each neck is as wide as "
        f'brings its {cost} closest to those of {REFERENCE} (3 layers) at '
        f'width {study.width}: {study.target:,}. Neck params and MMACs are '
        f"the neck's own; params, MMACs and latency the whole detector's "
        f'(latency: median of {setting.reps} forwards, images to class and '
        f'box maps, batch 1, the necks timed interleaved).',
        '',
        '| neck | width | neck params | neck MMACs | params | MMACs | '
        'latency ms | bbox mAP | mAP_50 | loss, first -> last epoch |',
        '|---|---|---|---|---|---|---|---|---|---|',
        *rows,
        '',
        '## Runs',
        '',
        '| run | neck | seed | bbox mAP | mAP_50 | loss, first -> last '
        'epoch | train s |',
        '|---|---|---|---|---|---|---|',
        *per_run,
        '',
        f'Total time: {seconds / 60:.1f} min.',
    ]
    return '\n'.join(lines) + '\n'


def neck_plot(study: NeckStudy, path: str) -> None:
    """bbox mAP (mean, bars from min to max over seeds) against the
    neck's MACs, one marker per neck."""
    markers = 'os^dvP*X<>'
    series = []
    for i, (name, runs) in enumerate(_by_neck(study).items()):
        maps = [r.bbox_map for r in runs]
        mean = statistics.fmean(maps)
        series.append(
            Series(
                [study.matched[name].macs / 1e6],
                [mean],
                markers[i % len(markers)],
                name,
                yerr=[[mean - min(maps)], [max(maps) - mean]],
            )
        )
    plot_series(
        path,
        series,
        'neck MMACs (batch 1)',
        'val bbox mAP',
        f'Necks at matched {COST_LABELS[study.match]}, shapes dataset',
        ylim=map_ylim([r.bbox_map for r in study.runs]),
    )


def neck_json(study: NeckStudy) -> str:
    """The neck study's results as JSON."""
    return json.dumps(
        dict(
            reference=REFERENCE,
            width=study.width,
            match=study.match,
            target=study.target,
            matched={n: m._asdict() for n, m in study.matched.items()},
            latency=study.latency,
            runs=[r._asdict() for r in study.runs],
        ),
        indent=1,
    )
