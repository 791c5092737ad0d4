"""The scaling study's short setting end to end (the CI form)."""

import json
import re
import struct

import pytest

pytestmark = pytest.mark.slow  # trains

RULE_RUNS = (
    'base',
    'grid-0',
    'grid-1',
    'width-phi1',
    'depth-phi1',
    'resolution-phi1',
    'compound-phi1',
)
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def test_short_study_writes_table_and_plot(tmp_path, run_tool):
    work = tmp_path / 'study'
    log = run_tool(
        'tools/analysis/scaling_study.py',
        '--setting',
        'short',
        '--work-dir',
        str(work),
        '--threads',
        '1',
        timeout=600,
    )
    # one progress line per trained run, with its time and an ETA
    progress = re.findall(r'\[(\d)/7\] (\S+): .* (\d+) s; (ETA|done)', log)
    assert len(progress) >= 6, log
    assert 'grid search at phi = 1: best (alpha, beta, gamma) = (1.2, ' in log

    table = (work / 'scaling_study.md').read_text()
    rows = {
        line.split('|')[1].strip(): line.split('|')
        for line in table.splitlines()
        if line.startswith('| ') and not line.startswith('| run')
    }
    assert set(rows) == set(RULE_RUNS)
    for name in RULE_RUNS:
        bbox_map = float(rows[name][8])
        assert 0 <= bbox_map <= 1, rows[name]
    assert rows['width-phi1'][4].strip() == '1 / 1.41 / 1'
    assert rows['depth-phi1'][4].strip() == '2 / 1 / 1'
    assert rows['resolution-phi1'][4].strip() == '1 / 1 / 1.41'

    results = json.loads((work / 'scaling_study.json').read_text())
    macs = {run['name']: run['macs'] for run in results['runs']}
    assert macs['base'] < min(v for k, v in macs.items() if k != 'base')
    compound = next(r for r in results['runs'] if r['rule'] == 'compound')
    assert compound['coefficients'] == results['best']

    png = (work / 'scaling_study.png').read_bytes()
    assert png[:8] == PNG_SIGNATURE
    assert png[12:16] == b'IHDR'
    width, height = struct.unpack('>II', png[16:24])
    assert width > 400 and height > 300
