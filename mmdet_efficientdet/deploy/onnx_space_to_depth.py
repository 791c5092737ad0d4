"""The stem's strided conv over the image as a conv over space-to-depth.

onnxruntime's int8 convolution (``QLinearConv``, NHWC) is slow on an
input of 3 channels: EfficientDet-Lite0's stem, a 3x3 conv of stride 2
on the image, took 0.58 ms of the quantized network's 9.7 ms for 2% of
its multiply-adds (CPU, 2 threads). The same conv can read the image
rearranged by ``SpaceToDepth`` (each 2x2 block of pixels becomes 12
channels of one pixel) as a 2x2 conv of stride 1 over 12 channels: the
weight of kernel tap ``(kh, kw)`` of input channel ``c`` moves to tap
``(dh, dw)`` of channel ``(bh * 2 + bw) * 3 + c``, where ``kh - p = 2 *
dh + bh`` (``p``: the conv's top padding, likewise for the width), and
the taps the 3x3 kernel does not reach are zeros. The products and sums
are those of the original (in int8, the same integers: the per-channel
weight scales do not change). Lite0@320, int8: the stem 0.24 ms, the
``SpaceToDepth`` (run in float before the input's quantization) 0.18-0.24
ms; in float onnxruntime's stem is faster as it is, so only
:func:`~.onnx_quantize.quantize_int8` applies :func:`space_to_depth_stem`
(measures in ``docs/deployment.md``).
"""

import numpy as np


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _taps(kernel: int, pad: int, block: int):
    """``(first, count)`` of the blocks a kernel of ``kernel`` taps padded
    ``pad`` before reaches, relative to the output's own block."""
    first = -((pad + block - 1) // block)  # floor(-pad / block)
    last = (kernel - 1 - pad) // block
    return first, last - first + 1


def space_to_depth_weight(
    weight: np.ndarray, pads: tuple, block: int
) -> np.ndarray:
    """The ``(O, C * block**2, KH', KW')`` weight over ``SpaceToDepth``
    input that computes what ``weight`` ``(O, C, KH, KW)`` with stride
    ``block`` and top / left padding ``pads`` computes over the image."""
    out_c, in_c, kernel_h, kernel_w = weight.shape
    top, left = pads
    first_h, size_h = _taps(kernel_h, top, block)
    first_w, size_w = _taps(kernel_w, left, block)
    new = np.zeros((out_c, in_c * block * block, size_h, size_w), weight.dtype)
    for kh in range(kernel_h):
        dh, bh = divmod(kh - top, block)
        for kw in range(kernel_w):
            dw, bw = divmod(kw - left, block)
            channel = (bh * block + bw) * in_c
            new[:, channel : channel + in_c, dh - first_h, dw - first_w] = (
                weight[:, :, kh, kw]
            )
    return new


def space_to_depth_stem(model, block: int = 2) -> int:
    """Rewrite in place each conv of ``model`` (an ``onnx.ModelProto``
    with static input shapes) that reads a graph input with stride
    ``block`` as ``SpaceToDepth`` + a conv of stride 1; return how many.

    Convs with groups or dilation, or inputs whose height or width
    ``block`` does not divide, are left as they are.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inputs = {
        i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in graph.input
    }
    inits = {init.name: init for init in graph.initializer}
    rewritten = 0
    for index, node in enumerate(list(graph.node)):
        if node.op_type != 'Conv' or node.input[0] not in inputs:
            continue
        attrs = _attrs(node)
        dims = inputs[node.input[0]]
        if (
            node.input[1] not in inits
            or list(attrs.get('strides', [1, 1])) != [block, block]
            or attrs.get('group', 1) != 1
            or any(d != 1 for d in attrs.get('dilations', [1, 1]))
            or attrs.get('auto_pad', b'NOTSET') != b'NOTSET'
            or len(dims) != 4
            or dims[2] % block
            or dims[3] % block
        ):
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        pads = list(attrs.get('pads', [0, 0, 0, 0]))
        new = space_to_depth_weight(weight, pads[:2], block)
        # the original's output size, and the block padding that gives it
        kernel = weight.shape[2:]
        size = [
            (dims[2 + i] + pads[i] + pads[i + 2] - kernel[i]) // block + 1
            for i in range(2)
        ]
        begin = [-_taps(kernel[i], pads[i], block)[0] for i in range(2)]
        end = [
            size[i] - 1 + new.shape[2 + i] - dims[2 + i] // block - begin[i]
            for i in range(2)
        ]
        if min(end) < 0:
            continue
        name = f'{node.input[1]}_space_to_depth'
        graph.initializer.append(numpy_helper.from_array(new, name))
        moved = f'{node.name}/space_to_depth_output'
        graph.node.insert(
            index + rewritten,
            helper.make_node(
                'SpaceToDepth',
                [node.input[0]],
                [moved],
                f'{node.name}/space_to_depth',
                blocksize=block,
            ),
        )
        node.input[0], node.input[1] = moved, name
        del node.attribute[:]
        node.attribute.extend(
            [
                helper.make_attribute('kernel_shape', list(new.shape[2:])),
                helper.make_attribute('strides', [1, 1]),
                helper.make_attribute('pads', begin + end),
            ]
        )
        rewritten += 1
    if rewritten:
        from .onnx_resize import drop_unused

        drop_unused(graph)
    return rewritten
