"""Cost budgets and the search for the largest compound coefficient.

A budget caps one cost of a model: MACs, parameters, latency or peak
training memory (:data:`KINDS`). :func:`largest_phi` finds the largest
compound coefficient phi whose EfficientDet
(:func:`~mmdet_efficientdet.scaling.get_spec`) stays within every budget.

``get_spec(phi)`` is the official table at the integers 0-7 and the paper's
formulas elsewhere, so cost is not monotonic in phi: the formulas put 4
BiFPN layers and one more block in every backbone stage at phi = 0.01, a
larger model than D0, and they give D2 a wider BiFPN (120) and backbone
(1.1 ** 2) than the table's D2 (112, B2). Each family on its own grows with
phi: every quantity of the formulas is a rounded non-decreasing function of
phi, and D0 < D1 < ... < D7. The search therefore checks the table in
order, then scans the formulas at half-integers above the best table entry
and bisects between the last fitting and the first failing point on a
grid of ``step``.
"""

import math
import re
from typing import Callable, Dict, List, NamedTuple, Optional

from ..scaling import OFFICIAL_BY_PHI, EfficientDetSpec, get_spec


class Kind(NamedTuple):
    """One kind of cost: its label, its units and how to show a value."""

    label: str
    units: Dict[str, float]
    shown_in: str  # one of ``units``
    example: str


# Counts take decimal prefixes, times SI units, memory bytes with decimal
# (GB) or binary (GiB) prefixes; a bare number counts ones, bytes, and
# for a time has no meaning.
_COUNT_UNITS = {'': 1.0, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}
KINDS: Dict[str, Kind] = {
    'macs': Kind('MACs', _COUNT_UNITS, 'G', '2.5G'),
    'params': Kind('params', _COUNT_UNITS, 'M', '4M'),
    'latency': Kind(
        'latency', {'s': 1.0, 'ms': 1e-3, 'us': 1e-6}, 'ms', '30ms'
    ),
    'train_memory': Kind(
        'peak training memory',
        {
            '': 1.0,
            'B': 1.0,
            'KB': 1e3,
            'MB': 1e6,
            'GB': 1e9,
            'TB': 1e12,
            'KiB': 2.0**10,
            'MiB': 2.0**20,
            'GiB': 2.0**30,
            'TiB': 2.0**40,
        },
        'GiB',
        '2GiB',
    ),
}

_QUANTITY = re.compile(
    r'^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*$'
)


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(
            f'unknown budget kind {kind!r}; expected one of {list(KINDS)}'
        )
    return KINDS[kind]


def parse_budget(kind: str, text: str) -> float:
    """The value of a budget such as ``'2.5G'``, ``'30ms'``, ``'2GiB'``.

    Args:
        kind (str): A key of :data:`KINDS`.
        text (str): A positive number with one of the kind's units (prefix
            letters of counts in either case).

    Returns:
        float: MACs, parameters, seconds or bytes.

    Raises:
        ValueError: Unknown kind, malformed text, a unit the kind does not
            take, or a value that is not positive.

    Example:
        >>> parse_budget('macs', '2.5G'), parse_budget('latency', '30ms')
        (2500000000.0, 0.03)
    """
    spec = _check_kind(kind)
    match = _QUANTITY.match(str(text))
    if match is None:
        raise ValueError(
            f'cannot read {kind} budget {text!r}; write a number with a '
            f'unit, e.g. {spec.example!r}'
        )
    number, unit = float(match.group(1)), match.group(2)
    if spec.units is _COUNT_UNITS:
        unit = unit.upper()
    if unit not in spec.units:
        units = [u for u in spec.units if u] or ['']
        hint = ' (a bare number has no unit)' if not unit else ''
        raise ValueError(
            f'{kind} budget {text!r} has unit {unit!r}{hint}; expected one '
            f'of {units}, e.g. {spec.example!r}'
        )
    value = number * spec.units[unit]
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f'{kind} budget must be positive, got {text!r}')
    return value


def format_cost(kind: str, value: float) -> str:
    """A cost in the kind's display unit, e.g. ``'2.492 G'``."""
    spec = _check_kind(kind)
    unit = spec.shown_in
    digits = 1 if kind == 'latency' else 3
    return f'{value / spec.units[unit]:.{digits}f} {unit}'


CostFn = Callable[[EfficientDetSpec], Dict[str, float]]


class Evaluation(NamedTuple):
    """One model of the search: its phi, spec, costs and verdict."""

    phi: float
    spec: EfficientDetSpec
    costs: Dict[str, float]
    fits: bool

    @property
    def source(self) -> str:
        """``'official table'`` or ``'paper formulas'``."""
        official = self.phi.is_integer() and int(self.phi) in OFFICIAL_BY_PHI
        return 'official table' if official else 'paper formulas'


class SearchResult(NamedTuple):
    """What :func:`largest_phi` found.

    Attributes:
        best (Evaluation): The largest fitting phi.
        budgets (dict): Kind -> budget.
        evaluations (list[Evaluation]): Every model evaluated, in order.
        next_larger (Evaluation, optional): The smallest evaluated phi
            above ``best`` (it does not fit).
        capped (bool): ``max_phi`` itself fits: the budget allows more.
    """

    best: Evaluation
    budgets: Dict[str, float]
    evaluations: List[Evaluation]
    next_larger: Optional[Evaluation]
    capped: bool


def _is_table(phi: float) -> bool:
    return phi.is_integer() and int(phi) in OFFICIAL_BY_PHI


def _formula_grid(low: float, high: float, step: float) -> List[float]:
    """Multiples of ``step`` in ``(low, high]``, the table's integers left
    out (they are other models)."""
    first = math.floor(low / step + 1e-9) + 1
    last = math.floor(high / step + 1e-9)
    phis = [round(n * step, 9) for n in range(first, last + 1)]
    return [phi for phi in phis if not _is_table(phi)]


def largest_phi(
    costs: CostFn,
    budgets: Dict[str, float],
    max_phi: float = 8.0,
    step: float = 0.01,
    log: Optional[Callable[[str], None]] = None,
) -> SearchResult:
    """The largest compound coefficient whose model fits every budget.

    Args:
        costs (callable): Spec -> kind -> cost, e.g.
            :class:`~mmdet_efficientdet.analysis.costs.ModelCosts`.
        budgets (dict): Kind -> budget (same units as ``costs``).
        max_phi (float): Largest coefficient searched.
        step (float): Resolution of the search between table entries.
        log (callable, optional): Receives one line per evaluated model.

    Returns:
        SearchResult: The best evaluation and how it was found.

    Raises:
        ValueError: No budget, a bad ``max_phi`` / ``step``, or a budget
            that even D0 (phi 0) exceeds.
    """
    if not budgets:
        raise ValueError('give at least one budget')
    for kind in budgets:
        _check_kind(kind)
    if not (max_phi >= 0 and math.isfinite(max_phi)):
        raise ValueError(f'max_phi must be >= 0, got {max_phi!r}')
    if not (0 < step <= 0.5):
        raise ValueError(f'step must be in (0, 0.5], got {step!r}')
    seen: Dict[float, Evaluation] = {}

    def evaluate(phi: float) -> Evaluation:
        phi = float(round(phi, 9))
        if phi not in seen:
            spec = get_spec(phi)
            cost = costs(spec)
            fits = all(cost[k] <= budget for k, budget in budgets.items())
            seen[phi] = Evaluation(phi, spec, cost, fits)
            if log is not None:
                shown = ', '.join(
                    f'{KINDS[k].label} {format_cost(k, cost[k])}'
                    for k in budgets
                )
                log(
                    f'phi {phi:<5g} {spec.name:<8} {shown}: '
                    f'{"fits" if fits else "over budget"}'
                )
        return seen[phi]

    best: Optional[Evaluation] = None
    for k in sorted(OFFICIAL_BY_PHI):
        if k > max_phi:
            break
        evaluation = evaluate(k)
        if not evaluation.fits:
            break
        best = evaluation
    if best is None:
        d0 = seen[0.0]
        over = ', '.join(
            f'{KINDS[k].label} {format_cost(k, d0.costs[k])} > '
            f'{format_cost(k, budget)}'
            for k, budget in budgets.items()
            if d0.costs[k] > budget
        )
        raise ValueError(
            f'no EfficientDet fits the budget: the smallest, D0 (phi 0), '
            f'needs {over}'
        )
    # the formulas: a coarse scan above the best table entry, then bisection
    low, high = best.phi, None
    scan = best.phi + 0.5
    while scan < max_phi:
        evaluation = evaluate(scan)
        if not evaluation.fits:
            high = scan
            break
        low = scan
        scan += 1.0
    if high is None:
        grid = _formula_grid(low, max_phi, step)
    else:
        grid = [p for p in _formula_grid(low, high, step) if p < high]
    fit, fail = -1, len(grid)
    while fail - fit > 1:
        mid = (fit + fail) // 2
        if evaluate(grid[mid]).fits:
            fit = mid
        else:
            fail = mid
    if fit >= 0:
        formula_best = seen[grid[fit]]
    else:
        formula_best = seen.get(low)
    if formula_best is not None and formula_best.phi > best.phi:
        best = formula_best
    capped = high is None and fail == len(grid)
    above = [e for e in seen.values() if e.phi > best.phi and not e.fits]
    next_larger = min(above, key=lambda e: e.phi) if above else None
    return SearchResult(
        best=best,
        budgets=dict(budgets),
        evaluations=list(seen.values()),
        next_larger=next_larger,
        capped=capped,
    )
