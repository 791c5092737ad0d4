"""Latency, throughput and peak memory of a detector config, optionally
side by side with the equivalent effdet model.

    python tools/analysis/benchmark.py CONFIG [--checkpoint CKPT]
        [--device cpu|cuda:0] [--dtype fp32|fp16] [--size S] [--batch 8]
        [--reps 20] [--warmup 3] [--deploy] [--compile] [--onnx]
        [--vs-effdet [NAME]] [--train-batch 4] [--threads N]
        [--ort-spinning in-run|always|off] [--settle-ms MS]
        [--json OUT.json]

Measures, at the config's input size (``efficientdet.image_size``):

- ``forward``: the raw network, images -> per-level class and box maps
  (``model._forward``; effdet: ``EfficientDet.forward``);
- ``predict``: the full prediction, images -> at most 100 boxes per image
  after decoding and NMS (``model.predict``; effdet: ``DetBenchPredict``);
  both take the best 5000 (anchor, class) scores over all levels, no score
  threshold, NMS IoU 0.5;
- each as latency at batch 1 (ms) and throughput at ``--batch`` (images/s),
  plus the peak memory of one batch-1 call;
- with ``--train-batch N``: one training iteration (loss, backward, SGD
  step) at batch N on random boxes, its time and peak memory; effdet runs
  ``DetBenchTrain``.

Every figure is the median over ``--reps`` repetitions; the compared
models run interleaved (ours, ours deployed, effdet, ours, ...), after
``--warmup`` untimed repetitions each, each timed call after
``--settle-ms`` idle milliseconds (default 10): PyTorch's OpenMP workers
spin for a few milliseconds after each call, and onnxruntime's Lite0
timed right after a PyTorch conv took 16.0 ms, 13.5 ms after a 5 ms pause
(PyTorch timed right after onnxruntime: unchanged). Peak memory is the
process's resident-set high-water mark above its level before the call on
the CPU, ``torch.cuda.max_memory_allocated`` on a GPU
(``mmdet_efficientdet.analysis.measure``).

``--deploy`` adds two copies of the model rewritten by
``mmdet_efficientdet.deploy.prepare_for_deploy`` (BN folded into convs,
static SAME padding for the input size): ``deployed`` (NCHW) and
``deployed-nhwc`` (weights and inputs channels-last), so that the table
shows where channels-last pays.
``--compile`` adds ``deployed-nhwc`` through ``torch.compile`` (forward
only; compiling takes a minute or more on a CPU). ``--onnx`` (CPU, fp32)
exports the deployed model to ONNX and adds onnxruntime at batch 1:
``ort-fp32`` and ``ort-int8`` (static QDQ quantization,
``mmdet_efficientdet.deploy.onnx_quantize``, calibrated on 8 synthetic
images): the forward rows run the graph of the per-level maps
(``export_onnx.py --levels``), the function the other columns' forward
computes, the predict rows the graph with NMS (``export_onnx.py --nms``),
and an ``end to end`` row times ``OrtDetector`` on a decoded 640x480
image - preprocessing, network, NMS and boxes in the image's
coordinates. onnxruntime uses
``--threads`` threads (default: torch's count); its idle threads spin
during a call only (``--ort-spinning in-run``, onnxruntime's
``session.force_spinning_stop``): within a call they wait as a deployed
session does by default, spinning, and between calls they sleep rather
than take the cores from the PyTorch models timed in between. The
columns are then a deployed session's latency plus one thread wake-up per
call; ``always`` (onnxruntime's default) slows the PyTorch columns by
its spinning, ``off`` onnxruntime's own on an idle machine (each op wakes
the threads). On a loaded machine spinning costs more than it saves
(threads spin on cores that other processes want): say the load with
the figures.
``--vs-effdet`` builds effdet's ``tf_efficientdet_<variant>`` (or NAME)
with the same number of classes, converts its random weights into ours
(so both compute the same function; the largest class-output difference
is printed) and adds its column and the ratios ours / effdet. Without a
checkpoint our model keeps its random initialisation.
"""

import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
from typing import Callable, Dict, List, Optional

import torch
from mmdet.apis import init_detector

from mmdet_efficientdet.analysis.measure import (
    peak_memory,
    random_samples,
    time_interleaved,
)

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--checkpoint', help='checkpoint (default: random)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda:0, ...')
    parser.add_argument('--dtype', choices=sorted(DTYPES), default='fp32')
    parser.add_argument(
        '--size', type=int, help="square input size (default: the config's)"
    )
    parser.add_argument(
        '--batch', type=int, default=8, help='batch of the throughput rows'
    )
    parser.add_argument('--reps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--deploy',
        action='store_true',
        help='add the deployed model (BN folded, static padding)',
    )
    parser.add_argument(
        '--compile',
        action='store_true',
        help='add deployed-nhwc through torch.compile (forward rows)',
    )
    parser.add_argument(
        '--onnx',
        action='store_true',
        help='add onnxruntime fp32 and int8 (batch 1, CPU)',
    )
    parser.add_argument(
        '--vs-effdet',
        nargs='?',
        const='auto',
        metavar='NAME',
        help='compare with effdet (default: tf_efficientdet_<variant>)',
    )
    parser.add_argument(
        '--train-batch',
        type=int,
        default=0,
        help='also time one training iteration at this batch (0: no)',
    )
    parser.add_argument(
        '--no-predict', action='store_true', help='skip the predict rows'
    )
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument(
        '--ort-spinning',
        choices=('in-run', 'always', 'off'),
        default='in-run',
        help="onnxruntime's idle threads: spin during a call only "
        '(default), always (its own default) or never',
    )
    parser.add_argument(
        '--settle-ms',
        type=float,
        default=10.0,
        help='idle milliseconds before each timed call (default 10), so '
        'that the call before leaves no thread spinning on the cores',
    )
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args(argv)
    if args.reps < 1 or args.warmup < 0 or args.batch < 1:
        parser.error('need --reps >= 1, --warmup >= 0 and --batch >= 1')
    if args.settle_ms < 0:
        parser.error('need --settle-ms >= 0')
    if args.dtype == 'fp16' and not args.device.startswith('cuda'):
        parser.error('--dtype fp16 needs a CUDA device')
    if args.onnx and (args.device != 'cpu' or args.dtype != 'fp32'):
        parser.error('--onnx runs onnxruntime on the CPU: fp32, cpu only')
    return args


def build_ours(args: argparse.Namespace) -> torch.nn.Module:
    model = init_detector(args.config, args.checkpoint, device=args.device)
    spec = model.cfg.get('efficientdet')
    if spec is None:
        raise ValueError(
            f'{args.config} has no `efficientdet` entry (written by '
            f'scaled_config): cannot tell the input size'
        )
    return model


def median_ms(times: List[float]) -> float:
    return 1000 * statistics.median(times)


class Row:
    """One measure: a median per model, formatted later."""

    def __init__(self, name: str, unit: str, per_image: int = 0) -> None:
        self.name, self.unit, self.per_image = name, unit, per_image
        self.values: Dict[str, float] = {}


def time_rows(
    rows: List[Row],
    name: str,
    fns: Dict[str, Callable[[], object]],
    args: argparse.Namespace,
    batch: int,
) -> None:
    times = time_interleaved(
        fns, args.reps, args.warmup, args.device, args.settle_ms / 1000
    )
    if batch == 1:
        row = Row(f'{name} latency, batch 1', 'ms')
        row.values = {k: median_ms(v) for k, v in times.items()}
    else:
        row = Row(f'{name} throughput, batch {batch}', 'img/s')
        row.values = {
            k: batch / statistics.median(v) for k, v in times.items()
        }
    rows.append(row)
    print(f'  {row.name}: done', file=sys.stderr, flush=True)


def memory_row(
    rows: List[Row],
    name: str,
    fns: Dict[str, Callable[[], object]],
    device: str,
) -> None:
    row = Row(name, 'MiB')
    for key, fn in fns.items():
        fn()  # warm-up: lazily created state is not a peak of the call
        row.values[key] = peak_memory(fn, device) / 2**20
    rows.append(row)


def print_table(rows: List[Row], columns: List[str]) -> None:
    ratios = (
        [c for c in columns if c != 'effdet'] if 'effdet' in columns else []
    )
    head = ['measure'] + columns + [f'{c} / effdet' for c in ratios]
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '---|' * len(head))
    for row in rows:
        cells = [f'{row.name} ({row.unit})']
        for column in columns:
            value = row.values.get(column)
            cells.append('-' if value is None else f'{value:.1f}')
        # three decimals: targets such as "<= 0.25 x effdet" are not
        # decided by rounding
        for column in ratios:
            ours, theirs = row.values.get(column), row.values.get('effdet')
            if ours is None or theirs is None:
                cells.append('-')
            elif row.unit == 'img/s':  # time ratio, lower is faster
                cells.append(f'{theirs / ours:.3f}')
            else:
                cells.append(f'{ours / theirs:.3f}')
        print('| ' + ' | '.join(cells) + ' |')


def build_onnxruntime(
    model: torch.nn.Module,
    size: int,
    threads: int,
    folder: str,
    spinning: str = 'in-run',
) -> Dict[str, Dict[str, Callable[[], object]]]:
    """onnxruntime fp32 and int8 of the deployed ``model`` at batch 1:
    per column, ``forward`` (per-level maps), ``predict`` (NMS in the graph)
    and ``end to end`` (the runner on a decoded 640x480 image)."""
    import numpy as np

    from mmdet_efficientdet.deploy import prepare_for_deploy
    from mmdet_efficientdet.deploy.onnx_export import (
        DetectorExport,
        export_onnx,
        nms_settings,
    )
    from mmdet_efficientdet.deploy.onnx_meta import deploy_metadata
    from mmdet_efficientdet.deploy.onnx_quantize import quantize_int8
    from mmdet_efficientdet.deploy.ort_runner import OrtDetector

    shape = (1, 3, size, size)
    deployed = copy.deepcopy(model).cpu().float()
    prepare_for_deploy(deployed, shape)
    nms = nms_settings(model.bbox_head.test_cfg)
    rng = np.random.default_rng(0)
    # calibration: smooth random images (only the timing matters here)
    calib = [
        np.repeat(
            np.repeat(rng.integers(0, 256, (30, 40, 3), np.uint8), 16, 0),
            16,
            1,
        )
        for _ in range(8)
    ]
    image = calib[0]  # 480 x 640
    detectors: Dict[tuple, OrtDetector] = {}
    for outputs in ('levels', 'detections'):
        wrapper = DetectorExport(
            copy.deepcopy(deployed),
            shape,
            nms=nms if outputs == 'detections' else None,
            levels=outputs == 'levels',
        ).eval()
        meta = deploy_metadata(model.cfg, shape, wrapper.kind, nms)
        fp32 = export_onnx(
            wrapper, osp.join(folder, f'{outputs}.onnx'), metadata=meta
        )
        int8 = quantize_int8(
            fp32, osp.join(folder, f'{outputs}_int8.onnx'), calib
        )
        for kind, path in (('fp32', fp32), ('int8', int8)):
            detectors[kind, outputs] = OrtDetector(
                path, threads, spinning=spinning
            )
    x = np.random.default_rng(1).standard_normal(shape, np.float32)
    fns = {}
    for kind in ('fp32', 'int8'):
        maps = detectors[kind, 'levels'].session
        full = detectors[kind, 'detections']
        fns[f'ort-{kind}'] = {
            'forward': lambda s=maps: s.run(None, {'images': x}),
            'predict': lambda d=full: d.run(x, (size, size), (1.0, 1.0)),
            'end to end': lambda d=full: d(image),
        }
    return fns


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device, dtype = args.device, DTYPES[args.dtype]
    model = build_ours(args)
    spec = model.cfg.efficientdet
    size = args.size or spec['image_size']
    num_classes = model.bbox_head.num_classes

    nets: Dict[str, torch.nn.Module] = {'ours': model}
    effdet_net = None
    if args.vs_effdet:
        from mmdet_efficientdet.analysis.effdet_twin import (
            build_effdet_twin,
            effdet_name_for,
            twin_difference,
        )

        name = args.vs_effdet
        if name == 'auto':
            name = effdet_name_for(spec['name'])
        if args.checkpoint:
            print(
                'note: --vs-effdet replaces the checkpoint weights by '
                "effdet's random ones (both models must share weights)",
                file=sys.stderr,
            )
        effdet_net = build_effdet_twin(model, name, num_classes, size)
        effdet_net.to(device)
    if args.deploy:
        from mmdet_efficientdet.deploy import prepare_for_deploy

        for key, nhwc in (('deployed', False), ('deployed-nhwc', True)):
            deployed = copy.deepcopy(model)
            report = prepare_for_deploy(
                deployed, (1, 3, size, size), channels_last=nhwc
            )
            nets[key] = deployed
        print(f'deploy: {report}', file=sys.stderr)
    if effdet_net is not None:
        nets['effdet'] = effdet_net
    for net in nets.values():
        net.to(device=device, dtype=dtype).eval()
    # columns that only time some rows: torch.compile, onnxruntime
    extra: Dict[str, Dict[str, Callable[[], object]]] = {}
    threads = args.threads or torch.get_num_threads()
    folder = tempfile.TemporaryDirectory()
    if args.onnx:
        extra.update(
            build_onnxruntime(
                model, size, threads, folder.name, args.ort_spinning
            )
        )
        print('onnxruntime: fp32 and int8 exported', file=sys.stderr)
    compiled = None
    if args.compile:
        if 'deployed-nhwc' not in nets:
            raise SystemExit('--compile needs --deploy')
        compiled = torch.compile(nets['deployed-nhwc']._forward)
        extra['deployed-nhwc+compile'] = {}
    columns = [k for k in nets if k != 'effdet'] + list(extra)
    columns += ['effdet'] if 'effdet' in nets else []

    def images(n: int, channels_last: bool = False) -> torch.Tensor:
        x = torch.randn(n, 3, size, size, device=device, dtype=dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    if effdet_net is not None:
        diff, scale = twin_difference(model, effdet_net, images(1))
        print(
            f'{name}: largest class-output difference to ours {diff:.2e} '
            f'(outputs up to {scale:.2f})',
            file=sys.stderr,
        )

    inputs = {
        n: {key: images(n, key.endswith('nhwc')) for key in nets}
        for n in sorted({1, args.batch})
    }

    def forward_fns(n: int) -> Dict[str, Callable[[], object]]:
        fns = {}
        for key, net in nets.items():
            x = inputs[n][key]
            if key == 'effdet':
                fns[key] = lambda net=net, x=x: net(x)
            else:
                fns[key] = lambda net=net, x=x: net._forward(x)
        if compiled is not None:
            x = inputs[n]['deployed-nhwc']
            fns['deployed-nhwc+compile'] = lambda x=x: compiled(x)
        return with_extra(fns, n, 'forward')

    def with_extra(
        fns: Dict[str, Callable[[], object]], n: int, row: str
    ) -> Dict[str, Callable[[], object]]:
        if n == 1:
            fns.update({k: v[row] for k, v in extra.items() if row in v})
        return {k: fns[k] for k in columns if k in fns}

    predict_benches = {}
    if not args.no_predict and effdet_net is not None:
        from effdet import DetBenchPredict

        predict_benches['effdet'] = DetBenchPredict(effdet_net).eval()

    def predict_fns(n: int) -> Dict[str, Callable[[], object]]:
        fns = {}
        samples = random_samples(n, size, device)
        for key, net in nets.items():
            x = inputs[n][key]
            if key == 'effdet':
                bench = predict_benches['effdet']
                fns[key] = lambda bench=bench, x=x: bench(x)
            else:
                fns[key] = lambda net=net, x=x: net.predict(x, samples)
        return with_extra(fns, n, 'predict')

    rows: List[Row] = []
    print(
        f'{args.config}: {size}x{size}, {device}, {args.dtype}, '
        f'{torch.get_num_threads()} threads, {args.reps} reps, '
        f'load average {os.getloadavg()[0]:.1f}',
        file=sys.stderr,
    )
    with torch.inference_mode():
        for n in sorted({1, args.batch}):
            time_rows(rows, 'forward', forward_fns(n), args, n)
        if not args.no_predict:
            for n in sorted({1, args.batch}):
                time_rows(rows, 'predict', predict_fns(n), args, n)
        if args.onnx:
            ends = {
                k: v['end to end']
                for k, v in extra.items()
                if 'end to end' in v
            }
            time_rows(rows, 'end to end', ends, args, 1)
        memory_row(
            rows, 'forward peak memory, batch 1', forward_fns(1), device
        )
    if args.train_batch:
        train_rows(rows, model, effdet_net, args, size)
    folder.cleanup()
    print(
        f'load average at the end {os.getloadavg()[0]:.1f} (1 min)',
        file=sys.stderr,
    )
    print_table(rows, columns)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                {r.name: dict(unit=r.unit, **r.values) for r in rows},
                f,
                indent=2,
            )


def train_rows(
    rows: List[Row],
    model: torch.nn.Module,
    effdet_net: Optional[torch.nn.Module],
    args: argparse.Namespace,
    size: int,
) -> None:
    """Time and peak memory of one SGD iteration of each model."""
    n, device = args.train_batch, args.device
    num_boxes = 8
    samples = random_samples(n, size, device, boxes=num_boxes)
    x = torch.randn(n, 3, size, size, device=device, dtype=DTYPES[args.dtype])
    fns: Dict[str, Callable[[], object]] = {}
    ours = copy.deepcopy(model).train()
    ours_opt = torch.optim.SGD(ours.parameters(), lr=1e-4, momentum=0.9)

    def ours_step() -> None:
        losses = ours.loss(x, samples)
        loss, _ = ours.parse_losses(losses)
        loss.backward()
        ours_opt.step()
        ours_opt.zero_grad(set_to_none=True)

    fns['ours'] = ours_step
    if effdet_net is not None:
        from effdet import DetBenchTrain

        bench = DetBenchTrain(copy.deepcopy(effdet_net)).train()
        bench_opt = torch.optim.SGD(bench.parameters(), lr=1e-4, momentum=0.9)
        # effdet's targets: boxes y1, x1, y2, x2 and 1-based class ids
        target = dict(
            bbox=torch.stack(
                [s.gt_instances.bboxes[:, [1, 0, 3, 2]] for s in samples]
            ),
            cls=torch.stack([s.gt_instances.labels + 1 for s in samples]),
        )

        def effdet_step() -> None:
            loss = bench(x, target)['loss']
            loss.backward()
            bench_opt.step()
            bench_opt.zero_grad(set_to_none=True)

        fns['effdet'] = effdet_step
    times = time_interleaved(fns, args.reps, args.warmup, device)
    row = Row(f'train iteration, batch {n}', 'ms')
    row.values = {k: median_ms(v) for k, v in times.items()}
    rows.append(row)
    memory_row(rows, f'train peak memory, batch {n}', fns, device)


if __name__ == '__main__':
    main()
