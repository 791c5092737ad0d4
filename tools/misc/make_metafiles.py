"""Write model-index.yml, one metafile.yml per config folder and the
models tables of README.md and configs/efficientdet/README.md.

    python tools/misc/make_metafiles.py           # (re)write them
    python tools/misc/make_metafiles.py --check   # exit 1 if out of date

The files follow OpenMMLab's model index (what ``mim search`` and
``mmengine.hub`` read): per config its variant, compound coefficient,
input size, parameters and MACs - counted from the config itself on the
meta device (:mod:`mmdet_efficientdet.analysis.complexity`), never typed -
and, for the configs of effdet's TF-ported weights, the official COCO AP
and the effdet release file to convert (effdet's own model table).
"""

import argparse
import ast
import glob
import os.path as osp
import sys
from typing import Dict, List

import torch
import yaml
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from mmdet_efficientdet.analysis.complexity import count, input_size
from mmdet_efficientdet.convert import EFFDET_VARIANTS
from mmdet_efficientdet.convert.effdet import OFFICIAL_COCO_VAL_AP
from mmdet_efficientdet.scaling import OFFICIAL

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = dict(
    URL='https://arxiv.org/abs/1911.09070',
    Title='EfficientDet: Scalable and Efficient Object Detection',
)
EFFDET_CODE = 'https://github.com/rwightman/efficientdet-pytorch'
# folder -> collection; configs/_base_ holds no model
COLLECTIONS = {
    'efficientdet': dict(
        Name='EfficientDet',
        Metadata={
            'Training Data': 'COCO',
            'Training Techniques': [
                'SGD with Momentum',
                'Weight Decay',
                'EMA',
            ],
            'Architecture': ['EfficientNet', 'BiFPN'],
        },
        Paper=PAPER,
    ),
    'efficientdet/converted': dict(
        Name='EfficientDet (effdet weights)',
        Metadata={
            'Training Data': 'COCO',
            'Architecture': ['EfficientNet', 'BiFPN'],
        },
        Paper=PAPER,
    ),
    'bifpn': dict(
        Name='BiFPN in mmdet detectors',
        Metadata={'Training Data': 'COCO', 'Architecture': ['BiFPN']},
        Paper=PAPER,
    ),
    'quickstart': dict(
        Name='EfficientDet quickstart',
        Metadata={
            'Training Data': 'shapes (made by the package)',
            'Architecture': ['EfficientNet-Lite', 'BiFPN'],
        },
        Paper=PAPER,
    ),
    'finetune': dict(
        Name='EfficientDet fine-tuning',
        Metadata={
            'Training Data': 'photo-objects (made by the package)',
            'Architecture': ['EfficientNet', 'BiFPN'],
        },
        Paper=PAPER,
    ),
    'finetune/baseline': dict(
        Name='Fine-tuning yardstick (RetinaNet)',
        Metadata={
            'Training Data': 'photo-objects (made by the package)',
            'Architecture': ['EfficientNet-Lite', 'FPN'],
        },
        Paper=PAPER,
    ),
}


def is_alias(path: str) -> bool:
    """Whether the config is only ``_base_ = 'other.py'``: a former name
    kept for configs that inherit it, not a model of its own."""
    with open(path, encoding='utf-8') as f:
        body = ast.parse(f.read()).body
    return (
        len(body) == 1
        and isinstance(body[0], ast.Assign)
        and [getattr(t, 'id', None) for t in body[0].targets] == ['_base_']
        and isinstance(body[0].value, ast.Constant)
    )


def model_entry(folder: str, path: str) -> Dict:
    """The metafile entry of one config."""
    cfg = Config.fromfile(path)
    name = osp.splitext(osp.basename(path))[0]
    spec = cfg.get('efficientdet')
    if spec is not None:
        size = input_size(cfg)
        params, macs = count(cfg.model, size)
        meta = {
            'Variant': spec['name'],
            'Compound Coefficient': spec['phi'],
            'Input Size': size,
            'Parameters': params,
            'MACs (G)': round(macs / 1e9, 3),
        }
    else:
        # two-stage and other mmdet detectors: parameters only
        meta = {'Parameters': count_params(cfg.model)}
    meta = {k: v for k, v in meta.items() if v is not None}
    entry = {
        'Name': name,
        'In Collection': COLLECTIONS[folder]['Name'],
        'Config': f'configs/{folder}/{osp.basename(path)}',
    }
    entry['Metadata'] = meta
    variant = EFFDET_VARIANTS.get(name[: -len('_coco')])
    if variant is not None:
        entry.update(converted_from(variant))
    return entry


def count_params(model_cfg: dict) -> int:
    """Parameters of a detector config, built on the meta device."""
    register_all_modules()
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    return sum(p.numel() for p in model.parameters())


def converted_from(variant) -> Dict:
    """Results and source weights of an effdet-converted config."""
    from effdet.config.model_config import efficientdet_model_param_dict

    url = efficientdet_model_param_dict[variant.name].get('url')
    out: Dict = {}
    official = variant.name == f'tf_efficientdet_{variant.spec}'
    if official and variant.spec in OFFICIAL_COCO_VAL_AP:
        out['Results'] = [
            {
                'Task': 'Object Detection',
                'Dataset': 'COCO',
                'Metrics': {'box AP': OFFICIAL_COCO_VAL_AP[variant.spec]},
            }
        ]
    if url:
        out['Converted From'] = {'Weights': url, 'Code': EFFDET_CODE}
    return out


TABLE_START = '<!-- models table: tools/misc/make_metafiles.py -->'
TABLE_END = '<!-- end of models table -->'
# markdown files holding the table, and how they link to a config
TABLE_FILES = {'README.md': '', 'configs/efficientdet/README.md': '../../'}


def display_name(variant: str) -> str:
    """'d7x' -> 'D7x', 'lite3x' -> 'Lite3x'."""
    if variant.startswith('lite'):
        return 'Lite' + variant[len('lite') :]
    return variant.capitalize()


def models_table(models: Dict[str, List[Dict]], link: str) -> str:
    """Markdown: one row per variant, our config and the converted one."""
    ours = {m['Metadata']['Variant']: m for m in models['efficientdet']}
    tf = {
        m['Metadata']['Variant']: m
        for m in models['efficientdet/converted']
        if m['Name'] == f'tf_efficientdet_{m["Metadata"]["Variant"]}_coco'
    }
    rows = [
        '| variant | input | params (90 classes) | MACs | COCO AP (TF '
        'weights) | config | effdet weights |',
        '|---|---|---|---|---|---|---|',
    ]
    for variant in OFFICIAL:
        mine, theirs = ours[variant], tf[variant]
        meta = theirs['Metadata']
        ap = theirs.get('Results', [{}])[0].get('Metrics', {}).get('box AP')
        rows.append(
            f'| {display_name(variant)} | '
            f'{meta["Input Size"]} | {meta["Parameters"]:,} | '
            f'{meta["MACs (G)"]:.3f} G | {ap if ap else "-"} | '
            f'[{mine["Name"]}]({link}{mine["Config"]}) | '
            f'[converted]({link}{theirs["Config"]}) |'
        )
    return '\n'.join(rows)


def with_table(path: str, table: str) -> str:
    """The markdown file's text with the table between its markers."""
    text = open(path, encoding='utf-8').read()
    start, end = text.index(TABLE_START), text.index(TABLE_END)
    return (
        text[: start + len(TABLE_START)] + '\n' + table + '\n' + (text[end:])
    )


def metafiles() -> Dict[str, str]:
    """Relative path -> text of every metafile, of model-index.yml and of
    the markdown files with the models table."""
    texts, imports, by_folder = {}, [], {}
    for folder, collection in COLLECTIONS.items():
        paths = sorted(glob.glob(osp.join(REPO, 'configs', folder, '*.py')))
        models: List[Dict] = [
            model_entry(folder, p) for p in paths if not is_alias(p)
        ]
        by_folder[folder] = models
        rel = f'configs/{folder}/metafile.yml'
        texts[rel] = yaml.safe_dump(
            {'Collections': [collection], 'Models': models},
            sort_keys=False,
            width=79,
        )
        imports.append(rel)
    texts['model-index.yml'] = yaml.safe_dump(
        {'Import': imports}, sort_keys=False
    )
    for rel, link in TABLE_FILES.items():
        table = models_table(by_folder, link)
        texts[rel] = with_table(osp.join(REPO, rel), table)
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--check',
        action='store_true',
        help='write nothing; exit 1 when a file differs from what the '
        'configs give',
    )
    args = parser.parse_args()
    stale = []
    for rel, text in metafiles().items():
        path = osp.join(REPO, rel)
        old = open(path).read() if osp.isfile(path) else None
        if old == text:
            continue
        if args.check:
            stale.append(rel)
        else:
            with open(path, 'w') as f:
                f.write(text)
            print(f'wrote {rel}')
    if stale:
        print(
            'out of date (run python tools/misc/make_metafiles.py): '
            + ', '.join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
