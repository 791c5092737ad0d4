"""tools/analysis/scale_to_budget.py as a user runs it."""

import re

import pytest
from mmengine.config import Config

from helpers import load_file
from mmdet_efficientdet.analysis.complexity import count, input_size

TOOL = 'tools/analysis/scale_to_budget.py'


@pytest.mark.slow
def test_mac_budget_writes_d0(tmp_path, run_tool):
    out = str(tmp_path / 'cfgs' / 'efficientdet_budget.py')
    log = run_tool(TOOL, '--macs', '2.5G', '--out-config', out)
    assert '| MACs | 2.500 G | 2.49' in log, log
    assert 'largest phi within the budget: 0 = EfficientDet-D0' in log
    assert 'next larger phi evaluated: 0.' in log
    assert f'config written to {out}' in log
    text = open(out).read()
    assert "globals().update(scaled_config(_base_, 'd0'))" in text
    cfg = Config.fromfile(out)
    assert cfg.efficientdet.name == 'd0'
    assert cfg.model.bbox_head.num_classes == 80  # the base config's
    macs = count(cfg.model, input_size(cfg), num_classes=90)[1]
    assert macs <= 2.5e9


@pytest.mark.slow
def test_latency_and_memory_budgets(tmp_path, run_tool):
    """Measured budgets on D0 alone (--max-phi 0): the latency of a
    forward and the peak memory of training are measured and shown."""
    out = str(tmp_path / 'measured.py')
    log = run_tool(
        TOOL,
        '--latency',
        '60s',
        '--train-memory',
        '64GiB',
        '--max-phi',
        '0',
        '--reps',
        '1',
        '--threads',
        '1',
        '--out-config',
        out,
    )
    assert 'latency, train_memory measured on cpu at batch 1, 1 torch' in log
    latency = re.search(r'\| latency \| 60000\.0 ms \| ([0-9.]+) ms \|', log)
    memory = re.search(
        r'\| peak training memory \| 64\.000 GiB \| ([0-9.]+) GiB \|', log
    )
    assert latency and memory, log
    assert 0 < float(latency.group(1)) < 60000
    # D0 at 512 px: 3.9 M weights, gradients, momentum and activations
    assert 0.05 < float(memory.group(1)) < 64
    assert 'the budget allows more than --max-phi' in log
    assert Config.fromfile(out).efficientdet.name == 'd0'


tool = load_file(TOOL)


def _fails(capsys, *args):
    with pytest.raises(SystemExit) as error:
        tool.main(list(args))
    assert error.value.code != 0
    return str(error.value.code) + capsys.readouterr().err


def test_too_small_budget_exits_with_the_reason(capsys):
    err = _fails(capsys, '--macs', '1G')
    assert 'D0 (phi 0), needs MACs 2.492 G > 1.000 G' in err


def test_bad_budget_and_no_budget_are_usage_errors(capsys):
    assert "'30' has unit ''" in _fails(capsys, '--latency', '30')
    assert 'give at least one budget' in _fails(capsys)
