"""tools/analysis/benchmark.py runs every measure and compares with effdet."""

import json

import pytest

from helpers import coco_config

pytestmark = pytest.mark.slow  # runs the benchmark tool

LITE0 = coco_config('lite0')


def test_benchmark_vs_effdet_all_rows(run_tool, tmp_path):
    out = tmp_path / 'bench.json'
    printed = run_tool(
        'tools/analysis/benchmark.py',
        LITE0,
        '--size',
        '128',
        '--batch',
        '2',
        '--reps',
        '2',
        '--warmup',
        '1',
        '--threads',
        '1',
        '--vs-effdet',
        '--deploy',
        '--train-batch',
        '2',
        '--json',
        str(out),
    )
    figures = json.loads(out.read_text())
    columns = {'ours', 'deployed', 'deployed-nhwc', 'effdet'}
    expected_rows = {
        'forward latency, batch 1',
        'forward throughput, batch 2',
        'predict latency, batch 1',
        'predict throughput, batch 2',
        'forward peak memory, batch 1',
        'train iteration, batch 2',
        'train peak memory, batch 2',
    }
    assert set(figures) == expected_rows
    for name, row in figures.items():
        present = set(row) - {'unit'}
        if name.startswith('train'):
            assert present == {'ours', 'effdet'}
        else:
            assert present == columns
        for key in present:
            value = row[key]
            assert value >= 0 if 'memory' in name else value > 0, (name, key)
    # same weights in both: effdet's outputs equal ours
    assert 'tf_efficientdet_lite0: largest class-output difference' in printed
    diff = float(printed.split('difference to ours ')[1].split()[0])
    assert diff < 1e-4
    for column in ('ours', 'deployed', 'deployed-nhwc'):
        assert f'| {column} / effdet ' in printed


@pytest.mark.slow
def test_benchmark_onnxruntime_columns(run_tool, tmp_path):
    out = tmp_path / 'bench.json'
    printed = run_tool(
        'tools/analysis/benchmark.py',
        LITE0,
        *('--size', '128', '--batch', '1', '--reps', '2', '--warmup', '1'),
        *('--threads', '1', '--vs-effdet', '--deploy', '--onnx'),
        *('--ort-spinning', 'off', '--json', str(out)),
    )
    figures = json.loads(out.read_text())
    assert 'load average' in printed
    ort = {'ort-fp32', 'ort-int8'}
    for name in ('forward latency, batch 1', 'predict latency, batch 1'):
        assert ort | {'ours', 'effdet'} <= set(figures[name])
        assert all(figures[name][key] > 0 for key in ort)
    assert set(figures['end to end latency, batch 1']) == ort | {'unit'}
    assert '| ort-int8 / effdet ' in printed
