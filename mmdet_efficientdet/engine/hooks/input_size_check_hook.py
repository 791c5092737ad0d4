"""Stop a run whose pipelines are not at the variant's input size."""

from typing import Any, List

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ...scaling import SIZE_ARGS

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _walk(node: Any, where: str, size: int, problems: List[str]) -> None:
    if isinstance(node, dict):
        arg = SIZE_ARGS.get(node.get('type'))
        if arg is not None and arg in node:
            value = tuple(node[arg])
            if value != (size, size):
                problems.append(f'{where} {node["type"]}.{arg}={value}')
        for key, value in node.items():
            _walk(value, f'{where}.{key}', size, problems)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _walk(value, f'{where}[{i}]', size, problems)


def input_size_problems(cfg) -> List[str]:
    """The transforms and settings of ``cfg`` that are not at the input
    size of its EfficientDet variant (``cfg.efficientdet.image_size``,
    written by :func:`~mmdet_efficientdet.scaling.scaled_config`); empty
    for a config without one."""
    spec = cfg.get('efficientdet')
    if not spec:
        return []
    size = spec['image_size']
    problems: List[str] = []
    for name in DATALOADERS:
        loader = cfg.get(name)
        if loader:
            _walk(loader.get('dataset'), f'{name}.dataset', size, problems)
    preprocessor = cfg.get('model', {}).get('data_preprocessor', {})
    divisor = preprocessor.get('pad_size_divisor')
    if divisor is not None and divisor != size:
        problems.append(f'model.data_preprocessor.pad_size_divisor={divisor}')
    return problems


@HOOKS.register_module()
class InputSizeCheckHook(Hook):
    """Refuse to start when a pipeline's size is not the variant's.

    ``scaled_config`` writes the variant's input size into every
    ``Resize``, ``RandomResize``, ``RandomCrop`` and ``Pad`` of the
    dataloaders it returns. A config that assigns ``train_dataloader =
    dict(...)`` *after* calling it in the same file replaces those
    dataloaders by a merge with the inherited ones, silently bringing back
    the parent's sizes (e.g. the 256 px quickstart's under a 320 px Lite0):
    the model then trains at one scale and is tested at another. This hook
    names every transform that differs, before the first iteration.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        problems = input_size_problems(runner.cfg)
        if problems:
            size = runner.cfg.efficientdet['image_size']
            raise ValueError(
                f'the config is for input size {size} '
                f'(efficientdet.image_size) but {len(problems)} settings '
                f'are not: {"; ".join(problems)}. After '
                '`globals().update(scaled_config(...))` change the '
                'dataloaders it returned in place (e.g. '
                "`train_dataloader['batch_size'] = 4`) instead of "
                'assigning new dicts, or pass image_size= to scaled_config '
                'to train at another size.'
            )
