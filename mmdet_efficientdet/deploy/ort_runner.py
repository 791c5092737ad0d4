"""Run an exported detector in onnxruntime: image in, detections out.

Needs numpy, onnxruntime and OpenCV (``opencv-python-headless``) - no
torch, no mmdet. The file imports nothing of this package, so it can be
copied next to the ``.onnx`` onto a device::

    from ort_runner import OrtDetector
    detector = OrtDetector('lite0.onnx', threads=2)
    boxes, scores, labels = detector('demo.jpg')  # original-image pixels

It reads the preprocessing and post-processing from the file's metadata
(written by ``tools/deploy/export_onnx.py``, see
``mmdet_efficientdet.deploy.onnx_meta``) and does what the config's test
pipeline and data preprocessor do: load as BGR, resize to fit the input
(``keep_ratio``; OpenCV bilinear, as mmcv's ``imrescale``), pad bottom and
right, BGR -> RGB, ``(x - mean) / std``. A graph exported with ``--nms``
returns the final detections itself; for one exported with ``--decode``
the runner takes the ``nms_pre`` best scores, thresholds them and runs
class-wise NMS in numpy (the same steps, slower).
"""

import json
import os.path as osp
import platform
import warnings
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import onnxruntime as ort

Image = Union[str, np.ndarray]
Detections = Tuple[np.ndarray, np.ndarray, np.ndarray]

_OUTPUTS = ('detections', 'decoded')
SPINNING = ('always', 'in-run', 'off')


def read_image(image: Image) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 BGR image from a file or an array.

    Arrays are taken as OpenCV's BGR (``(H, W, 3)``), grayscale (``(H,
    W)`` or ``(H, W, 1)``, replicated to three channels) or BGRA (alpha
    dropped), as mmcv's color loading turns such files into BGR.
    """
    import cv2

    if isinstance(image, str):
        if not osp.isfile(image):
            raise FileNotFoundError(f'image file {image!r} not found')
        img = cv2.imread(image, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'{image!r} is not an image OpenCV can read')
        return img
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim != 3 or img.shape[2] != 3 or 0 in img.shape:
        raise ValueError(
            f'expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, '
            f'got shape {img.shape}'
        )
    if img.dtype != np.uint8:
        raise ValueError(f'expected a uint8 image, got {img.dtype}')
    return img


def int8_saturates(cpuinfo: str = '/proc/cpuinfo') -> bool:
    """Whether this CPU saturates onnxruntime's int8 products with 8-bit
    weights: an x86 CPU without VNNI, which sums two uint8 x int8 products
    into int16 (``vpmaddubsw``). Read from ``/proc/cpuinfo``; ``False``
    where that is not there (other systems, ARM)."""
    if platform.machine().lower() not in ('x86_64', 'amd64'):
        return False
    try:
        with open(cpuinfo) as info:
            lines = [line for line in info if line.startswith('flags')]
    except OSError:
        return False
    if not lines:
        return False
    flags = set(lines[0].split(':', 1)[1].split())
    return not flags & {'avx512_vnni', 'avx_vnni', 'amx_int8'}


class OrtDetector:
    """An exported EfficientDet in an onnxruntime session.

    Args:
        model (str): The ``.onnx`` written by ``export_onnx.py --nms`` (or
            ``--decode``; an export of raw outputs, flattened or per
            level (``--levels``), is only preprocessed for).
        threads (int, optional): onnxruntime's intra-op threads (default:
            its own choice, one per core).
        providers (Sequence[str]): onnxruntime execution providers.
        spinning (str): How onnxruntime's idle threads wait for work:
            ``'always'`` spin (its default: lowest latency; they go on
            spinning a while after a call returns), ``'in-run'`` spin
            during a call only (``session.force_spinning_stop``: the
            cores are free for other work between calls, one wake-up per
            call), ``'off'`` sleep at once (the cores stay free within a
            call too; slower).
    """

    def __init__(
        self,
        model: str,
        threads: Optional[int] = None,
        providers: Sequence[str] = ('CPUExecutionProvider',),
        spinning: str = 'always',
    ) -> None:
        if spinning not in SPINNING:
            raise ValueError(
                f'spinning must be one of {SPINNING}, got {spinning!r}'
            )
        if not osp.isfile(model):
            raise FileNotFoundError(f'model file {model!r} not found')
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if spinning == 'off':
            options.add_session_config_entry(
                'session.intra_op.allow_spinning', '0'
            )
        elif spinning == 'in-run':
            options.add_session_config_entry(
                'session.force_spinning_stop', '1'
            )
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                model, options, providers=list(providers)
            )
        except Exception as error:  # onnxruntime raises its own types
            raise ValueError(
                f'{model!r} is not an ONNX model onnxruntime can load: {error}'
            ) from error
        self.meta = self._read_meta(model)
        self.input_size = tuple(self.meta['input_size'])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.mean = np.asarray(self.meta['mean'], np.float32)
        self.std = np.asarray(self.meta['std'], np.float32)
        self.classes = self.meta.get('classes')
        if self.meta.get('weight_bits') == 8 and int8_saturates():
            warnings.warn(
                f'{model!r} has 8-bit int8 weights (quantized with '
                f'--full-range) and this x86 CPU has no VNNI: onnxruntime '
                f'saturates their products here and the detections lose '
                f'accuracy; quantize it again without --full-range '
                f'(7-bit weights)',
                stacklevel=2,
            )
        # the input channel each of OpenCV's B, G, R planes goes to, and
        # its (x - mean) / std for every uint8 x (mean, std in that order)
        self._channels = (2, 1, 0) if self.meta['bgr_to_rgb'] else (0, 1, 2)
        order = list(self._channels)
        values = np.arange(256, dtype=np.float32)[:, None]
        self._lut = np.ascontiguousarray(
            ((values - self.mean[order]) / self.std[order])[None]
        )
        self._pixel_pad = (self.meta['pad_val'] - self.mean) / self.std

    def _read_meta(self, model: str) -> Dict[str, object]:
        raw = self.session.get_modelmeta().custom_metadata_map
        if 'outputs' not in raw or 'input_size' not in raw:
            raise ValueError(
                f'{model!r} has no deployment metadata: export it with '
                f'tools/deploy/export_onnx.py --nms (or --decode)'
            )
        meta = {key: json.loads(value) for key, value in raw.items()}
        shape = self.session.get_inputs()[0].shape
        if list(shape[-2:]) != list(meta['input_size']):
            raise ValueError(
                f'{model!r}: input {shape} disagrees with its metadata '
                f'input_size {meta["input_size"]}'
            )
        return meta

    def preprocess(
        self, image: Image
    ) -> Tuple[np.ndarray, Tuple[int, int], Tuple[float, float]]:
        """The graph's input of one image.

        Returns:
            tuple: ``(1, 3, H, W)`` float32 input, the resized image's
            ``(height, width)`` in it and mmdet's ``scale_factor``
            ``(w_scale, h_scale)``.
        """
        import cv2

        img = read_image(image)
        height, width = img.shape[:2]
        out_h, out_w = self.input_size
        if self.meta['keep_ratio']:
            scale = min(out_h / height, out_w / width)
            new_w = int(width * scale + 0.5)
            new_h = int(height * scale + 0.5)
        else:
            new_w, new_h = out_w, out_h
        if (new_w, new_h) != (width, height):
            img = cv2.resize(
                img, (new_w, new_h), interpolation=cv2.INTER_LINEAR
            )
        pad_value = self.meta['pad_value']
        inputs = np.full((1, 3, out_h, out_w), pad_value, np.float32)
        pad_size = self.meta.get('pad_size') or (new_h, new_w)
        pad_h, pad_w = min(pad_size[0], out_h), min(pad_size[1], out_w)
        inputs[0, :, :pad_h, :pad_w] = self._pixel_pad[:, None, None]
        # uint8 -> (x - mean) / std through a table per channel: the same
        # float32 arithmetic, without float copies of the whole image
        normalised = cv2.LUT(img, self._lut)
        for channel, plane in zip(self._channels, cv2.split(normalised)):
            inputs[0, channel, :new_h, :new_w] = plane
        return (
            inputs,
            (new_h, new_w),
            (new_w / width, new_h / height),
        )

    def run(
        self,
        inputs: np.ndarray,
        img_shape: Tuple[int, int],
        scale_factor: Tuple[float, float],
    ) -> Detections:
        """Detections of one preprocessed image (see :meth:`preprocess`)."""
        expected = (1, 3) + self.input_size
        if inputs.shape != expected:
            raise ValueError(
                f'the model takes input of shape {expected}, got '
                f'{inputs.shape}: pass images through preprocess()'
            )
        if self.meta['outputs'] not in _OUTPUTS:
            raise ValueError(
                f'the model was exported with {self.meta["outputs"]!r} '
                f'outputs (logits and deltas, not boxes); the runner '
                f'needs an export with --nms (detections) or --decode '
                f'(decoded boxes)'
            )
        feed = {self.input_names[0]: inputs.astype(np.float32, copy=False)}
        if self.meta['outputs'] == 'detections':
            feed[self.input_names[1]] = np.array([img_shape], np.float32)
            feed[self.input_names[2]] = np.array([scale_factor], np.float32)
            dets, scores, labels, num = self.session.run(None, feed)
            n = int(num[0])
            return dets[0, :n], scores[0, :n], labels[0, :n]
        scores, boxes = self.session.run(None, feed)
        return self._postprocess(scores[0], boxes[0], img_shape, scale_factor)

    def __call__(self, image: Image) -> Detections:
        """``boxes`` ``(K, 4)`` (``x1, y1, x2, y2`` in the original image's
        pixels), ``scores`` ``(K,)`` and ``labels`` ``(K,)``, best first."""
        return self.run(*self.preprocess(image))

    def _postprocess(
        self,
        scores: np.ndarray,
        boxes: np.ndarray,
        img_shape: Tuple[int, int],
        scale_factor: Tuple[float, float],
    ) -> Detections:
        meta = self.meta
        num_classes = scores.shape[1]
        flat = scores.reshape(-1)
        k = meta['nms_pre']
        if 0 < k < flat.size:
            index = np.argpartition(-flat, k - 1)[:k]
        else:
            index = np.arange(flat.size)
        index = index[np.argsort(-flat[index], kind='stable')]
        index = index[flat[index] > meta['score_thr']]
        best = flat[index]
        labels = index % num_classes
        picked = boxes[index // num_classes].copy()
        picked[:, 0::2] = picked[:, 0::2].clip(0, img_shape[1])
        picked[:, 1::2] = picked[:, 1::2].clip(0, img_shape[0])
        picked /= np.tile(np.asarray(scale_factor, np.float32), 2)
        keep = nms_per_class(picked, best, labels, meta['iou_threshold'])
        keep = keep[: meta['max_per_img']]
        return picked[keep], best[keep], labels[keep]


def nms_per_class(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float
) -> np.ndarray:
    """Indices kept by greedy NMS within each class, best score first."""
    keep = []
    for label in np.unique(labels):
        members = np.nonzero(labels == label)[0]
        members = members[np.argsort(-scores[members], kind='stable')]
        x1, y1, x2, y2 = boxes[members].T
        areas = (x2 - x1) * (y2 - y1)
        alive = np.ones(len(members), bool)
        for i in range(len(members)):
            if not alive[i]:
                continue
            keep.append(members[i])
            rest = np.nonzero(alive[i + 1 :])[0] + i + 1
            w = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
            h = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
            inter = w.clip(0) * h.clip(0)
            union = areas[i] + areas[rest] - inter
            overlap = inter / np.maximum(union, np.finfo(np.float32).eps)
            alive[rest[overlap > iou]] = False
    keep = np.asarray(keep, np.int64)
    return keep[np.argsort(-scores[keep], kind='stable')]
