"""What several test files share: the checkout's paths, loading a file of
it as a module, and the deploy tests' models and exports.

Test files import it as ``from helpers import ...`` (tests/conftest.py
puts this folder on ``sys.path``). Importing it stays cheap: torch, cv2,
effdet's twin and the deploy modules are imported by the functions that
use them.
"""

from __future__ import annotations

import importlib.util
import os.path as osp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch.nn as nn

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
QUICKSTART = osp.join(
    REPO, 'configs', 'quickstart', 'efficientdet_lite0_1xb8-12e_shapes.py'
)
COCO_CONFIGS = osp.join(REPO, 'configs', 'efficientdet')
ORT_RUNNER = osp.join(REPO, 'mmdet_efficientdet', 'deploy', 'ort_runner.py')


def load_file(path: str, name: str | None = None):
    """The Python file at ``path`` (relative to the checkout, or absolute)
    executed as a module of its own named ``name`` (by default the file's
    name without ``.py``); it is not put in ``sys.modules``."""
    path = osp.join(REPO, path)
    if name is None:
        name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_runner():
    """The runner as a file of its own, as it is copied to a device."""
    return load_file(ORT_RUNNER)


def coco_config(variant: str) -> str:
    """The COCO config of an EfficientDet ``variant`` ('d0', 'lite0', ...)."""
    return osp.join(COCO_CONFIGS, f'efficientdet_{variant}_8xb16-300e_coco.py')


def with_effdet_weights(model: nn.Module, variant: str, size: int) -> None:
    """effdet's initialisation loaded into ``model``, BN made non-trivial.

    PyTorch's default initialisation decays a detector's signal to ~1e-17
    at the outputs, against which any tolerance passes; effdet's TF-style
    one keeps some signal, and the predictions, scaled to unit spread,
    pass it on.
    """
    import torch
    import torch.nn as nn

    from mmdet_efficientdet.analysis.effdet_twin import build_effdet_twin

    build_effdet_twin(model, f'tf_efficientdet_{variant}', 80, size)
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
    # the predictions' std-0.01 init would leave the outputs at their bias:
    # scale them to unit spread
    head = model.bbox_head
    with torch.no_grad():
        outputs = model._forward(torch.randn(1, 3, size, size, generator=gen))
        for conv, maps in zip((head.conv_cls, head.conv_reg), outputs):
            spread = float(torch.cat([m.flatten() for m in maps]).std())
            conv.pointwise_conv.conv.weight.div_(spread)


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A BGR uint8 image with structure at several scales."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    for cells in (4, 16, 64):
        noise = rng.random((cells, cells, 3), dtype=np.float32)
        img += cv2.resize(noise, (width, height)) / 3
    return (img * 255).clip(0, 255).astype(np.uint8)


def export_for_runner(
    model, tmp_path, outputs: str, deploy: bool = True, batch: int = 1
) -> str:
    """``model`` exported with the runner's metadata to
    ``tmp_path/{outputs}_{batch}.onnx``: decoded outputs, with NMS in the
    graph where ``outputs`` is 'detections'; ``model`` itself is left
    as it is (a copy is prepared for deployment)."""
    import copy

    from mmdet_efficientdet.deploy import prepare_for_deploy
    from mmdet_efficientdet.deploy.onnx_export import (
        DetectorExport,
        export_onnx,
        nms_settings,
    )
    from mmdet_efficientdet.deploy.onnx_meta import deploy_metadata

    size = model.cfg.efficientdet['image_size']
    shape = (batch, 3, size, size)
    nms = nms_settings(model.bbox_head.test_cfg)
    net = copy.deepcopy(model)
    if deploy:
        prepare_for_deploy(net, shape)
    wrapper = DetectorExport(
        net,
        shape,
        decode=True,
        nms=nms if outputs == 'detections' else None,
    )
    meta = deploy_metadata(model.cfg, shape, wrapper.kind, nms)
    return export_onnx(
        wrapper.eval(),
        str(tmp_path / f'{outputs}_{batch}.onnx'),
        metadata=meta,
    )


def deployed_with_effdet_weights(variant: str, size: int):
    """``(model, reference)``: the COCO config of ``variant`` with effdet's
    initialisation (:func:`with_effdet_weights`), prepared for deployment
    at ``size``, and a copy of it that the export's rewrites leave as
    it is."""
    import copy

    import torch
    from mmdet.apis import init_detector

    from mmdet_efficientdet.deploy import prepare_for_deploy

    torch.manual_seed(0)
    model = init_detector(coco_config(variant), None, device='cpu')
    with_effdet_weights(model, variant, size)
    prepare_for_deploy(model, (1, 3, size, size))
    return model, copy.deepcopy(model)


def assert_export_keeps_outputs(reference, wrapper, path: str) -> None:
    """The exported ``wrapper`` (a ``DetectorExport`` of a rewritten copy
    of ``reference``) computes ``reference``'s outputs, in PyTorch to
    1e-5 and in onnxruntime from ``path`` to 1e-4."""
    import torch

    from mmdet_efficientdet.deploy.onnx_export import compare_with_onnxruntime

    images = torch.randn(
        wrapper.input_shape, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        expected = reference._forward(images)
        got = wrapper.detector._forward(images)
    for ours, theirs in zip(got, expected):
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    diffs = compare_with_onnxruntime(wrapper, path, images)
    assert max(diffs.values()) <= 1e-4, diffs
