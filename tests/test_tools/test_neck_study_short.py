"""The neck study's short setting end to end (the CI form)."""

import json
import struct

import pytest

from mmdet_efficientdet.analysis.neck_study import NECKS

pytestmark = pytest.mark.slow  # trains 7 models; runs the tool
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def test_short_neck_study_writes_report_and_every_neck_learns(
    tmp_path, run_tool
):
    work = tmp_path / 'necks'
    log = run_tool(
        'tools/analysis/neck_study.py',
        '--setting',
        'short',
        '--work-dir',
        str(work),
        timeout=600,
    )
    assert '[8/8] bifpn-x3-seed0: same model as bifpn-fast-seed0' in log

    table = (work / 'neck_study.md').read_text()
    assert '# Neck study (shapes dataset)' in table
    header = (
        '| neck | width | neck params | neck MMACs | params | MMACs | '
        'latency ms | bbox mAP | mAP_50 | loss, first -> last epoch |'
    )
    lines = table.splitlines()
    start = lines.index(header) + 2
    rows = [line.split('|')[1:-1] for line in lines[start : start + 8]]
    assert [row[0].strip() for row in rows] == list(NECKS)
    for row in rows:
        assert 0 <= float(row[7]) <= 1 and float(row[6]) > 0, row

    results = json.loads((work / 'neck_study.json').read_text())
    assert (results['reference'], results['match']) == ('bifpn-fast', 'macs')
    assert set(results['matched']) == set(results['latency']) == set(NECKS)
    assert [run['neck'] for run in results['runs']] == list(NECKS)
    for run in results['runs']:
        metrics = run['metrics']
        # every neck trained: its loss fell from the first epoch to the last
        assert metrics['train/last_loss'] < metrics['train/first_loss'], run
        assert 0 <= metrics['coco/bbox_mAP'] <= 1

    png = (work / 'neck_study.png').read_bytes()
    assert png[:8] == PNG_SIGNATURE
    width, height = struct.unpack('>II', png[16:24])
    assert width > 400 and height > 300


def test_bad_neck_or_width_exits_naming_the_choices(
    tmp_path, run_failing_tool
):
    err = run_failing_tool(
        'tools/analysis/neck_study.py', '--necks', 'fpn', 'bifpn-max'
    )
    assert "unknown necks ['bifpn-max']; expected some of ['fpn'" in err
    err = run_failing_tool(
        'tools/analysis/neck_study.py',
        '--setting',
        'short',
        '--width',
        '400',
        '--work-dir',
        str(tmp_path),
    )
    assert 'error: neck' in err and 'Widths at which every neck' in err
