"""BiFPN mixed into mmdet detectors: every config builds, learns, predicts."""

from pathlib import Path

import pytest
import timm
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

from helpers import REPO

CONFIG_DIR = Path(REPO) / 'configs' / 'bifpn'
CONFIGS = sorted(p.name for p in CONFIG_DIR.glob('*.py'))
EFFICIENTNET_CONFIGS = [name for name in CONFIGS if '_effb3_' in name]
TRAIN_STEPS = 5
SIZES = ((64, 96), (64, 80))  # (height, width) of the two images


def load_config(name: str) -> Config:
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    # nothing is downloaded in tests: random backbone weights
    cfg.model.backbone.init_cfg = None
    train_cfg = cfg.model.get('train_cfg', {})
    if 'rcnn' in train_cfg:
        # CPU-sized two-stage training: 64 instead of 512 sampled RoIs per
        # image from 100 instead of 1000 proposals
        train_cfg.rpn_proposal.max_per_img = 100
        train_cfg.rcnn.sampler.num = 64
    return cfg


def build_detector(cfg: Config) -> torch.nn.Module:
    torch.manual_seed(0)
    # what mmengine's runner does when training on one device
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    return model


def synthetic_batch(sizes=SIZES, seed=0) -> dict:
    """Grey images with two coloured rectangles each, labelled 0 and 1."""
    gen = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[230, 40, 40], [40, 90, 230]], dtype=torch.uint8)
    inputs, samples = [], []
    for height, width in sizes:
        image = torch.full((3, height, width), 100, dtype=torch.uint8)
        boxes = []
        for label in (0, 1):
            w, h = torch.randint(16, 40, (2,), generator=gen).tolist()
            x = int(torch.randint(0, width - w, (1,), generator=gen))
            y = int(torch.randint(0, height - h, (1,), generator=gen))
            image[:, y : y + h, x : x + w] = colours[label, :, None, None]
            boxes.append([x, y, x + w, y + h])
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(height, width),
                ori_shape=(height, width),
                scale_factor=(1.0, 1.0),
            )
        )
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.tensor([0, 1]),
        )
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def zero_score_thresholds(test_cfg) -> None:
    """An untrained model scores below mmdet's 0.05: keep every box."""
    for key, value in test_cfg.items():
        if key == 'score_thr':
            test_cfg[key] = 0.0
        elif isinstance(value, dict):
            zero_score_thresholds(value)


def test_every_detector_and_backbone_is_covered():
    for algo in ('retinanet', 'fcos', 'faster-rcnn'):
        for backbone in ('_r50', '_effb3_'):
            assert any(n.startswith(algo + backbone) for n in CONFIGS), (
                f'no {algo} config with {backbone.strip("_-")}'
            )


@pytest.mark.slow
@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_and_predicts(name):
    cfg = load_config(name)
    assert cfg.model.neck.type == 'BiFPNNeck'
    zero_score_thresholds(cfg.model.test_cfg)
    model = build_detector(cfg)
    batch = synthetic_batch()

    # CPU-sized: the backbones have tests of their own, so only the neck
    # and the heads learn here (no backbone backward pass)
    model.backbone.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = OptimWrapper(
        torch.optim.SGD(params, lr=0.01, momentum=0.9),
        clip_grad=dict(max_norm=10),
    )
    model.train()
    # every BiFPN parameter is wired into the detector's loss
    data = model.data_preprocessor(batch, training=True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    for pname, param in model.neck.named_parameters():
        assert param.grad is not None, pname
    optim.zero_grad()

    neck_before = [p.detach().clone() for p in model.neck.parameters()]
    losses = []
    for _ in range(TRAIN_STEPS):
        log_vars = model.train_step(batch, optim)
        losses.append(log_vars['loss'].item())
    assert all(torch.isfinite(torch.tensor(losses))), losses
    # sampling makes two-stage losses noisy: compare the ends, averaged
    assert sum(losses[-2:]) < sum(losses[:2]), losses
    # the BiFPN learns (not every tensor moves: at 64-96 px the coarsest
    # levels get updates below float32 resolution of weights near 1)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(neck_before, model.neck.parameters())
    )

    model.eval()
    with torch.no_grad():
        results = model.test_step(batch)
    assert len(results) == 2
    for result, (height, width) in zip(results, SIZES):
        pred = result.pred_instances
        assert len(pred) > 0
        assert pred.bboxes.shape == (len(pred), 4)
        assert pred.scores.shape == pred.labels.shape == (len(pred),)
        assert pred.bboxes[:, 0::2].max() <= width
        assert pred.bboxes[:, 1::2].max() <= height


@pytest.mark.parametrize('name', EFFICIENTNET_CONFIGS)
def test_efficientnet_configs_load_timm_weights(name, tmp_path):
    """The configs' init path: a timm tf_efficientnet_b3 state dict."""
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained'
    assert 'tf_efficientnet_b3' in init_cfg.checkpoint
    timm_model = timm.create_model('tf_efficientnet_b3', pretrained=False)
    path = tmp_path / 'tf_efficientnet_b3.pth'
    torch.save(timm_model.state_dict(), path)
    init_cfg.checkpoint = str(path)
    backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    torch.testing.assert_close(
        backbone.stem.conv.weight, timm_model.conv_stem.weight
    )
