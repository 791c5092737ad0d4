"""Static nearest upsampling in an exported graph.

The BiFPN upsamples a level to the exact size of the finer one
(``F.interpolate(x, size=...)``), so the TorchScript exporter writes each
``Resize`` with a ``sizes`` input computed at run time from the shapes
(``Shape``, ``Gather``, ``Concat``, ``Cast``). onnxruntime's CPU optimiser
folds those where it can and keeps a resize in its channel-blocked layout
(see :mod:`.onnx_layout`) when it is by integer scales; the others - 3 to
5 at Lite0's 320, where levels halve with ceiling - run in NCHW, with a
reorder out of the blocked layout and one back in.

With the export's static input every size is known: :func:`static_resize`
writes each such ``Resize`` as nearest by constant integer scales, and
where the finer size is odd, as the doubled map cropped by a ``Slice``.
Both give the pixels of the original, which takes pixel
``floor(i * in / out)``: the rewrite is applied only where that equals
``i // scale``. Lite0@320, paired runs: fp32 -0.4% (within noise), int8
-1.9% (``docs/deployment.md``).
"""

from typing import Dict, List, Optional

import numpy as np


def _static_dims(value_info) -> Optional[List[int]]:
    dims = value_info.type.tensor_type.shape.dim
    if not dims or not all(d.HasField('dim_value') for d in dims):
        return None
    return [d.dim_value for d in dims]


def _is_floor_nearest(node) -> bool:
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return (
        attrs.get('mode') == b'nearest'
        and attrs.get('coordinate_transformation_mode') == b'asymmetric'
        and attrs.get('nearest_mode') == b'floor'
    )


def _integer_scales(
    in_dims: List[int], out_dims: List[int]
) -> Optional[List[int]]:
    """Per spatial axis the integer scale ``k`` whose ``i // k`` picks the
    pixels of floor-nearest resizing, or None."""
    if in_dims[:2] != out_dims[:2]:
        return None
    scales = []
    for size_in, size_out in zip(in_dims[2:], out_dims[2:]):
        k = -(-size_out // size_in)
        index = np.arange(size_out)
        if not np.array_equal(index * size_in // size_out, index // k):
            return None
        scales.append(k)
    return scales


def drop_unused(graph) -> None:
    """Remove, in place, the nodes and initializers of ``graph`` that no
    graph output depends on."""
    outputs = {o.name for o in graph.output}
    while True:
        used = outputs | {name for node in graph.node for name in node.input}
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(keep)
    used = {name for node in graph.node for name in node.input}
    initializers = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def static_resize(model) -> int:
    """Rewrite in place the ``Resize`` nodes of ``model`` (an
    ``onnx.ModelProto`` with static input shapes) whose ``sizes`` are
    computed at run time; return how many were rewritten."""
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes: Dict[str, List[int]] = {}
    for info in (*inferred.graph.value_info, *inferred.graph.input):
        dims = _static_dims(info)
        if dims is not None:
            shapes[info.name] = dims
    graph = model.graph
    constants = {i.name for i in graph.initializer}
    nodes, rewritten = [], 0
    for node in graph.node:
        sizes = node.input[3] if len(node.input) > 3 else ''
        scales = None
        if (
            node.op_type == 'Resize'
            and sizes
            and sizes not in constants
            and _is_floor_nearest(node)
            and node.input[0] in shapes
            and node.output[0] in shapes
        ):
            in_dims = shapes[node.input[0]]
            out_dims = shapes[node.output[0]]
            scales = _integer_scales(in_dims, out_dims)
        if scales is None:
            nodes.append(node)
            continue
        name = node.name or node.output[0]
        graph.initializer.append(
            numpy_helper.from_array(
                np.array([1, 1, *scales], np.float32), f'{name}/scales'
            )
        )
        exact = [i * k for i, k in zip(in_dims[2:], scales)] == out_dims[2:]
        doubled = node.output[0] if exact else f'{node.output[0]}/uncropped'
        nodes.append(
            helper.make_node(
                'Resize',
                [node.input[0], '', f'{name}/scales'],
                [doubled],
                name=name,
                mode='nearest',
                coordinate_transformation_mode='asymmetric',
                nearest_mode='floor',
            )
        )
        if not exact:
            crop = [f'{name}/{part}' for part in ('starts', 'ends', 'axes')]
            for key, value in zip(crop, ([0, 0], out_dims[2:], [2, 3])):
                graph.initializer.append(
                    numpy_helper.from_array(np.array(value, np.int64), key)
                )
            nodes.append(
                helper.make_node(
                    'Slice', [doubled, *crop], [node.output[0]], f'{name}/crop'
                )
            )
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unused(graph)
    return rewritten
