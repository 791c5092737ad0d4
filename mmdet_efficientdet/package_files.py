"""Where the configs and the model index live, installed or not.

As in OpenMMLab packages, a built install (``pip install .``, a wheel)
carries ``configs/`` and ``model-index.yml`` in ``mmdet_efficientdet/.mim/``
(setup.py copies them there); a source checkout and an editable install
read them from the repository beside the package.
"""

import os.path as osp

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))
MIM_DIR = osp.join(PACKAGE_DIR, '.mim')
CONFIG_PREFIX = 'mmdet_efficientdet::'


def package_files_root() -> str:
    """The folder holding ``configs/`` and ``model-index.yml``.

    Raises:
        FileNotFoundError: neither an installed ``.mim`` folder nor a
            checkout's ``configs/`` is there (a broken install).
    """
    for root in (MIM_DIR, osp.dirname(PACKAGE_DIR)):
        if osp.isdir(osp.join(root, 'configs')):
            return root
    raise FileNotFoundError(
        f'no configs/ in {MIM_DIR} (installed package) nor beside '
        f'{PACKAGE_DIR} (source checkout): reinstall mmdet-efficientdet'
    )


def get_config_file(name: str) -> str:
    """The absolute path of a config shipped with the package.

    Args:
        name (str): Path relative to ``configs/``, with or without the
            ``mmdet_efficientdet::`` prefix and the ``.py`` suffix, e.g.
            ``'quickstart/efficientdet_lite0_1xb8-12e_shapes'``.

    Raises:
        FileNotFoundError: no such config, naming where it was looked for.

    Example:
        >>> path = get_config_file(
        ...     'mmdet_efficientdet::efficientdet/'
        ...     'efficientdet_d0_8xb16-300e_coco.py')
        >>> osp.basename(path)
        'efficientdet_d0_8xb16-300e_coco.py'
    """
    rel = (
        name[len(CONFIG_PREFIX) :] if name.startswith(CONFIG_PREFIX) else name
    )
    if not rel.endswith('.py'):
        rel += '.py'
    configs = osp.join(package_files_root(), 'configs')
    path = osp.join(configs, rel)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config {name!r} is not among the packaged configs in {configs}'
        )
    return path
