"""Wall-clock time and peak memory of calls, on the CPU or a CUDA device,
and the random inputs they are measured on.

Used by ``tools/analysis/benchmark.py``, the budget search and the neck
study. Timing
interleaves the compared calls (A, B, A, B, ...) so that a machine whose
speed drifts (thermal throttling, another process) affects each alike, and
reports every repetition; callers take medians.

Peak memory on CUDA is ``torch.cuda.max_memory_allocated`` above the
allocation before the call. On the CPU there is no allocator counter, so it
is the process's resident-set high-water mark above the resident set before
the call: Linux resets the mark when ``5`` is written to
``/proc/self/clear_refs`` (proc(5)); glibc's free heap is handed back first
with ``malloc_trim`` so that memory freed by earlier calls is not silently
reused.
"""

import ctypes
import ctypes.util
import gc
import re
import time
from typing import Any, Callable, Dict, List, Union

import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

Device = Union[str, torch.device]

_STATUS = '/proc/self/status'
_CLEAR_REFS = '/proc/self/clear_refs'


def synchronize(device: Device) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU)."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(
    fns: Dict[str, Callable[[], Any]],
    reps: int,
    warmup: int = 2,
    device: Device = 'cpu',
    settle: float = 0.0,
) -> Dict[str, List[float]]:
    """Seconds per call of each function, repetitions interleaved.

    Args:
        fns (dict): Name -> zero-argument callable.
        reps (int): Timed repetitions of each function.
        warmup (int): Untimed repetitions of each function first.
        device: Device synchronised around every call.
        settle (float): Seconds of idle before each timed call, so that
            the thread pool of the call before has gone to sleep: after a
            parallel region PyTorch's OpenMP workers spin for a few
            milliseconds, and a runtime with its own pool (onnxruntime)
            timed right after shares the cores with them.

    Returns:
        dict: Name -> list of ``reps`` durations in seconds.
    """
    if reps < 1 or warmup < 0 or settle < 0:
        raise ValueError(
            'need reps >= 1, warmup >= 0, settle >= 0; got '
            f'{reps}, {warmup}, {settle}'
        )
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    synchronize(device)
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            if settle:
                time.sleep(settle)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def random_samples(
    n: int,
    size: int,
    device: Device = 'cpu',
    boxes: int = 0,
    num_classes: int = 3,
) -> List[DetDataSample]:
    """Samples of ``size`` x ``size`` images, with ``boxes`` random boxes
    (5-30% of the side, labels below ``num_classes``) each if asked; the
    same for every call (seed 0)."""
    samples = []
    gen = torch.Generator().manual_seed(0)
    for _ in range(n):
        meta = dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            pad_shape=(size, size),
            batch_input_shape=(size, size),
            scale_factor=(1.0, 1.0),
        )
        sample = DetDataSample(metainfo=meta)
        if boxes:
            xy = torch.rand(boxes, 2, generator=gen) * size * 0.7
            wh = (torch.rand(boxes, 2, generator=gen) * 0.25 + 0.05) * size
            gt = InstanceData()
            gt.bboxes = torch.cat([xy, xy + wh], 1).to(device)
            gt.labels = torch.randint(
                0, num_classes, (boxes,), generator=gen
            ).to(device)
            sample.gt_instances = gt
        samples.append(sample)
    return samples


def _status_kib(field: str) -> int:
    with open(_STATUS) as f:
        match = re.search(rf'^{field}:\s+(\d+) kB', f.read(), re.M)
    if match is None:
        raise RuntimeError(f'{_STATUS} has no {field}')
    return int(match.group(1))


def _trim_heap() -> None:
    gc.collect()
    libc_name = ctypes.util.find_library('c')
    if libc_name is not None:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, 'malloc_trim'):
            libc.malloc_trim(0)


def cpu_peak_supported() -> bool:
    """Whether this process can reset its resident-set high-water mark."""
    try:
        with open(_CLEAR_REFS, 'w') as f:
            f.write('5')
        _status_kib('VmHWM')
    except OSError:
        return False
    return True


def peak_memory(fn: Callable[[], Any], device: Device = 'cpu') -> int:
    """Peak bytes that ``fn()`` holds above what was held before it.

    Raises:
        RuntimeError: On a CPU whose kernel does not let the process reset
            its high-water mark (not Linux, or ``/proc`` read-only).
    """
    device = torch.device(device)
    if device.type == 'cuda':
        synchronize(device)
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != 'cpu':
        raise ValueError(f'peak memory on {device.type!r} is not supported')
    _trim_heap()
    if not cpu_peak_supported():
        raise RuntimeError(
            f'cannot reset the resident-set high-water mark through '
            f'{_CLEAR_REFS}; CPU peak memory needs Linux >= 4.0'
        )
    before = _status_kib('VmRSS')
    fn()
    return (_status_kib('VmHWM') - before) * 1024
