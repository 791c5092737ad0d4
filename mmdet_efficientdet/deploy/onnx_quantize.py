"""Static int8 quantization (QDQ) of an exported EfficientDet.

onnxruntime's quantizer wants every conv weight and bias to be an
initializer of its own. An exported EfficientDet breaks that twice:

- the head's towers share their convs across levels; folded for deploy,
  levels whose norms agree get equal weights, which the exporter stores
  once and hands out through ``Identity`` nodes (the quantizer stops with
  "Expected ...cls_convs.0.1.pointwise_conv.conv.weight to be an
  initializer", or leaves the conv in float);
- the prediction convs are shared by all levels outright, and equal biases
  (all zeros, say) become one initializer used by dozens of convs, while
  int8 quantization gives a bias the scale of its own conv's input.

:func:`untie_initializers` gives every such consumer its own copy (a few
KB per level); the network is unchanged. The float export repeats each
squeeze-excitation gate over its map for onnxruntime's float layout
(:mod:`.onnx_layout`); quantized, the repeat (a ``Resize`` of uint8)
costs more than the broadcast it replaced (D0: +13%), and
:func:`broadcast_gates` puts the broadcast back; Lite's ReLU6 written as
two 1x1 depthwise convs costs int8 more than the ``Clip`` it replaced
(Lite0: +3%), and :func:`clip_relu6` puts the ``Clip`` back.
:func:`quantize_int8` then
calibrates activation ranges on images and writes a QDQ model, weights
int8 per channel (7-bit by default, see :func:`quantize_int8`),
activations uint8; the network and the flattening of
the class scores are quantized, the levels at the concat's scale
(:func:`share_concat_scales`: the concat copies bytes, one dequantization
follows); the box prediction and its flattening (:func:`box_path`) and the
post-processing (decoding, NMS) stay float.
The file's metadata is kept, so the runner runs it as it runs the float
model.
"""

import copy
import os
import warnings
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from .onnx_resize import drop_unused

# the nodes quantized in an export of DetectorExport: the network and the
# flattening of its outputs (its ``flatten`` module: ``/flatten``,
# ``/flatten_1``); the rest - decoding, NMS - stays float
FLATTEN_SCOPE = '/flatten'
QUANTIZED_SCOPES = ('/backbone/', '/neck/', '/bbox_head/', FLATTEN_SCOPE)
# ... but for the box prediction and what carries it to the output
# (:func:`box_path`)
BOX_PREDICTION = '/bbox_head/conv_reg'
WEIGHT_OPS = {'Conv': (1, 2), 'Gemm': (1, 2), 'MatMul': (1,)}


def untie_initializers(model) -> int:
    """Give each weight / bias input of a conv its own initializer, in
    place; return how many copies were made.

    ``Identity`` nodes that pass an initializer on are replaced by a copy
    named after their output.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    made = 0
    for node in list(graph.node):
        if node.op_type == 'Identity' and node.input[0] in inits:
            array = numpy_helper.to_array(inits[node.input[0]])
            graph.initializer.append(
                numpy_helper.from_array(array, node.output[0])
            )
            inits[node.output[0]] = graph.initializer[-1]
            graph.node.remove(node)
            made += 1
    seen = set()
    for node in graph.node:
        for slot in WEIGHT_OPS.get(node.op_type, ()):
            if slot >= len(node.input) or node.input[slot] not in inits:
                continue
            name = node.input[slot]
            if name not in seen:
                seen.add(name)
                continue
            copy_name = f'{name}__{node.name or made}'
            clone = copy.deepcopy(inits[name])
            clone.name = copy_name
            graph.initializer.append(clone)
            node.input[slot] = copy_name
            made += 1
    return made


def _users(graph) -> dict:
    """Tensor name -> the nodes that take it as an input."""
    users: dict = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def box_path(graph) -> set:
    """Names of the box prediction's nodes (``BOX_PREDICTION``: every
    level's, both halves of a separable conv) and of the flattening nodes
    that carry their output to the box output.

    :func:`quantize_int8` leaves them float. In uint8 the deltas of all
    levels share one scale, a step of about 1 / 40 of their range: a box
    of a fine-tuned face detector then moves by a few percent of its
    size, which costs mAP at IoU 0.75 and above (measured: 0.694 fp32,
    0.639 with the box path in uint8, 0.692 with it float).
    """
    users = _users(graph)
    keep = {n.name for n in graph.node if n.name.startswith(BOX_PREDICTION)}
    tensors = [out for n in graph.node if n.name in keep for out in n.output]
    while tensors:
        for user in users.get(tensors.pop(), []):
            if user.name.startswith(FLATTEN_SCOPE) and user.name not in keep:
                keep.add(user.name)
                tensors.extend(user.output)
    return keep


def broadcast_gates(model) -> int:
    """Feed each ``Mul`` of a map and a nearest ``Resize`` of a ``1 x 1``
    map to the map's size the ``1 x 1`` map itself (broadcast: the same
    product), in place; drop the resizes. Returns how many were
    dropped."""
    from onnx import shape_inference

    graph = model.graph
    inferred = shape_inference.infer_shapes(model).graph
    shapes = {
        info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
        for info in list(inferred.value_info) + list(inferred.input)
    }
    users = _users(graph)
    dropped = 0
    for node in list(graph.node):
        if node.op_type != 'Resize':
            continue
        mode = next(
            (a.s for a in node.attribute if a.name == 'mode'), b'nearest'
        )
        after = users.get(node.output[0], [])
        if (
            mode != b'nearest'
            or shapes.get(node.input[0], [])[2:] != [1, 1]
            or len(after) != 1
            or after[0].op_type != 'Mul'
        ):
            continue
        mul = after[0]
        other = [name for name in mul.input if name != node.output[0]]
        full = shapes.get(node.output[0])
        if len(other) != 1 or not full or shapes.get(other[0]) != full:
            continue  # not a gate over a map: the product's shape would change
        for i, name in enumerate(mul.input):
            if name == node.output[0]:
                mul.input[i] = node.input[0]
        graph.node.remove(node)
        dropped += 1
        for name in node.input[1:]:  # roi, scales: constants of their own
            if name and users[name] == [node]:
                _drop_constant(graph, name)
    return dropped


def _is_six_minus(node, inits: dict) -> bool:
    """Whether ``node`` is the ``6 - x`` conv of
    :class:`~.onnx_layout.ConvReLU6`."""
    from onnx import numpy_helper

    if node.op_type != 'Conv' or len(node.input) != 3:
        return False
    if node.input[1] not in inits or node.input[2] not in inits:
        return False
    weight = numpy_helper.to_array(inits[node.input[1]])
    bias = numpy_helper.to_array(inits[node.input[2]])
    groups = next((a.i for a in node.attribute if a.name == 'group'), 1)
    return (
        weight.shape == (groups, 1, 1, 1)
        and bool(np.all(weight == -1))
        and bool(np.all(bias == 6))
    )


def clip_relu6(model) -> int:
    """Write each ``relu(6 - relu(6 - x))`` of
    :class:`~.onnx_layout.ConvReLU6` back as ``Clip(x, 0, 6)``, in place;
    return how many."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    users = _users(graph)

    def only_user(node, op_type: str):
        after = users.get(node.output[0], [])
        if len(after) == 1 and after[0].op_type == op_type:
            return after[0]
        return None

    bounds = ['relu6/min', 'relu6/max']
    replaced = 0
    for first in list(graph.node):
        if not _is_six_minus(first, inits):
            continue
        relu = only_user(first, 'Relu')
        second = relu and only_user(relu, 'Conv')
        last = second and only_user(second, 'Relu')
        if last is None or not _is_six_minus(second, inits):
            continue
        index = list(graph.node).index(first)
        for node in (first, relu, second, last):
            graph.node.remove(node)
        clip = helper.make_node(
            'Clip', [first.input[0], *bounds], list(last.output), first.name
        )
        graph.node.insert(index, clip)
        replaced += 1
    if replaced:
        for name, value in zip(bounds, (0.0, 6.0)):
            graph.initializer.append(
                numpy_helper.from_array(np.array(value, np.float32), name)
            )
        drop_unused(graph)
    return replaced


def share_concat_scales(model) -> int:
    """Give each input of the output flattening's concats
    (``/flatten...``) the concat's own quantization scale and zero point,
    in place, in a QDQ model; return how many inputs changed.

    The per-level prediction convs are calibrated one by one, and
    onnxruntime's ``QLinearConcat`` requantizes every input whose scale is
    not the output's: at the output's scale it copies bytes. The concat's
    calibrated range spans its inputs', so each level is rounded once, to
    the grid it was rounded to a second time before. The scale of a
    tensor is shared, by name, by the quantize / dequantize pairs of the
    reshapes and transposes that carry it to the concat; the initializers
    are overwritten, not renamed.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    users = _users(graph)
    changed = 0
    for concat in graph.node:
        if concat.op_type != 'Concat' or not concat.name.startswith(
            FLATTEN_SCOPE
        ):
            continue
        quantize = users.get(concat.output[0], [])
        inputs = [producer.get(name) for name in concat.input]
        if len(quantize) != 1 or quantize[0].op_type != 'QuantizeLinear':
            continue  # not quantized (a shape concat)
        if not all(
            d is not None and d.op_type == 'DequantizeLinear' for d in inputs
        ):
            continue
        target = [
            numpy_helper.to_array(inits[n]) for n in quantize[0].input[1:3]
        ]
        for dequantize in inputs:
            names = dequantize.input[1:3]
            if all(
                np.array_equal(numpy_helper.to_array(inits[name]), value)
                for name, value in zip(names, target)
            ):
                continue
            if not all(
                user.op_type in ('QuantizeLinear', 'DequantizeLinear')
                for name in names
                for user in users[name]
            ):
                continue  # a scale that something else reads too
            for name, value in zip(names, target):
                inits[name].CopyFrom(numpy_helper.from_array(value, name))
            changed += 1
    return changed


def _drop_constant(graph, name: str) -> None:
    for init in graph.initializer:
        if init.name == name:
            graph.initializer.remove(init)
            return
    for node in graph.node:
        if node.op_type == 'Constant' and list(node.output) == [name]:
            graph.node.remove(node)
            return


class ImageReader:
    """onnxruntime's ``CalibrationDataReader`` over images, through the
    runner's preprocessing (so calibration sees what inference sees)."""

    def __init__(self, detector, images: Iterable) -> None:
        self.detector = detector
        self.images: Iterator = iter(images)

    def get_next(self) -> Optional[dict]:
        image = next(self.images, None)
        if image is None:
            return None
        inputs, img_shape, scale_factor = self.detector.preprocess(image)
        names = self.detector.input_names
        feed = {names[0]: inputs}
        if len(names) == 3:
            feed[names[1]] = np.array([img_shape], np.float32)
            feed[names[2]] = np.array([scale_factor], np.float32)
        return feed


def quantize_int8(
    model_path: str,
    out_path: str,
    images: Sequence,
    method: str = 'percentile',
    reduce_range: bool = True,
) -> str:
    """Write the int8 QDQ form of ``model_path`` to ``out_path``.

    Args:
        model_path (str): Float model written by ``export_onnx.py``
            (``--deploy`` recommended: norms folded into the convs).
        out_path (str): Output ``.onnx``.
        images (Sequence): Calibration images (paths or BGR arrays), best
            a few dozen of the training set.
        method (str): Calibration: ``minmax``, ``percentile`` or
            ``entropy``.
        reduce_range (bool): 7-bit weights (-64..64), the default. On an
            x86 CPU without VNNI (AVX2 only) onnxruntime multiplies uint8
            activations by int8 weights with ``vpmaddubsw``, which sums
            two products into int16 and saturates when they exceed it
            (2 x 255 x 127 does); 7-bit weights keep every sum in range.
            With 8-bit weights (``False``) the file is accurate only on
            CPUs with VNNI (AVX512-VNNI, AVX-VNNI, AMX) or ARM's dot
            product. Measured (effdet-initialised Lite0, the int8
            logits' correlation with fp32's on one image): 8-bit 0.976 on
            an AVX-512 VNNI Xeon, 0.904 on an AVX2 EPYC; 7-bit 0.976 on
            the EPYC. The runner warns when an 8-bit file meets such a
            CPU (``weight_bits`` in the metadata).
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from .ort_runner import OrtDetector

    methods = dict(
        minmax=CalibrationMethod.MinMax,
        percentile=CalibrationMethod.Percentile,
        entropy=CalibrationMethod.Entropy,
    )
    if method not in methods:
        raise ValueError(f'method must be one of {sorted(methods)}')
    if not images:
        raise ValueError('quantization needs calibration images')
    model = onnx.load(model_path)
    untie_initializers(model)  # first: clip_relu6 reads initializers
    clip_relu6(model)
    broadcast_gates(model)
    float_nodes = box_path(model.graph) | {
        node.name
        for node in model.graph.node
        if not node.name.startswith(QUANTIZED_SCOPES)
    }
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    untied = os.path.join(folder, '.untied.' + os.path.basename(out_path))
    onnx.save(model, untied)

    def quantize(calibration: str) -> None:
        quantize_static(
            untied,
            out_path,
            ImageReader(OrtDetector(model_path), images),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            calibrate_method=methods[calibration],
            nodes_to_exclude=sorted(float_nodes),
        )

    try:
        try:
            quantize(method)
        except ValueError as error:
            # onnxruntime's histogram calibrators bin float32 values: a
            # tensor whose range is below float32's spacing (a sigmoid
            # stuck at 0.5 in an untrained net) cannot be cut into 2048
            # bins. minmax needs no histogram.
            if method == 'minmax' or 'bins' not in str(error):
                raise
            warnings.warn(
                f'{method} calibration failed ({error}): an activation '
                'range is too narrow for its histogram; calibrating '
                'with minmax instead',
                stacklevel=2,
            )
            quantize('minmax')
    finally:
        os.remove(untied)
    # the quantizer writes a new model: put the runner's metadata back
    quantized = onnx.load(out_path)
    share_concat_scales(quantized)
    del quantized.metadata_props[:]
    for prop in model.metadata_props:
        if prop.key != 'weight_bits':
            quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(
        key='weight_bits', value='7' if reduce_range else '8'
    )
    onnx.save(quantized, out_path)
    return out_path
