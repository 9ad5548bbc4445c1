"""Packaging for gluon-inception.

MXNet itself is an extra, not a requirement: the CPU wheel (``mxnet``) and the CUDA wheels
(``mxnet-cu112`` ...) are different distributions that install the same ``mxnet`` package, so
requiring one would pull a second, CPU copy over a user's GPU build. Choose one:
``pip install gluon-inception[cpu]`` or ``pip install gluon-inception[gpu]``.
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))


def read(*parts):
    with open(os.path.join(HERE, *parts), encoding="utf-8") as f:
        return f.read()


VERSION = re.search(r'^__version__ = "([^"]+)"', read("gluon_inception", "_version.py"), re.M).group(1)

# GluonCV 0.10.5 pins nothing, and an unpinned resolve brings numpy 2, which MXNet 1.9.1 cannot
# import. These bounds are the set verified to import together.
REQUIRES = [
    "numpy>=1.17,<1.24; python_version < '3.12'",
    "numpy>=1.26,<2; python_version >= '3.12'",
    "gluoncv==0.10.5.post0",
    "opencv-python>=4.1,<4.9",
    "pandas<2.1; python_version < '3.12'",
    "pandas>=2.1,<2.3; python_version >= '3.12'",
    "scipy<1.12",
    "matplotlib>=3.3,<3.9",
    "tqdm>=4.40",
    "portalocker>=2.0",
    "Pillow>=8",
    "scikit-learn>=0.24",
    # GluonCV imports distutils, which Python 3.12 removed; setuptools provides it.
    "setuptools; python_version >= '3.12'",
]

EXTRAS = {
    "cpu": ["mxnet==1.9.1"],
    "gpu": ["mxnet-cu112==1.9.1"],
    # Horovod must be built against the installed MXNet; see README "Horovod".
    "horovod": ["horovod==0.28.1"],
    # mx.onnx (1.9.1) needs onnx.mapping, which newer onnx removed; 1.14.1 has no Python 3.12 wheel.
    "onnx": ["onnx==1.14.1; python_version < '3.12'", "onnx==1.16.2; python_version >= '3.12'", "onnxruntime>=1.15"],
    # --tensorboard: event files for TensorBoard without TensorFlow.
    "tensorboard": ["tensorboardX>=2.5"],
    "test": ["pytest>=7", "pytest-timeout>=2.1", "ruff>=0.4", "import-linter>=2.0", "tensorboardX>=2.5"],
    "docs": ["sphinx>=7,<8", "furo>=2023.9.10", "numpydoc>=1.6"],
}

setup(
    name="gluon-inception",
    version=VERSION,
    description="GoogLeNet (Inception v1) for Apache MXNet Gluon: model, pretrained weights, "
    "Horovod training on ImageNet, evaluation and export.",
    long_description=read("README.md"),
    long_description_content_type="text/markdown",
    author="gluon-inception developers",
    license="Apache-2.0",
    url="https://github.com/gluon-inception/gluon-inception",
    project_urls={
        "Documentation": "https://gluon-inception.readthedocs.io",
        "Source": "https://github.com/gluon-inception/gluon-inception",
        "Issues": "https://github.com/gluon-inception/gluon-inception/issues",
    },
    packages=find_packages(include=["gluon_inception", "gluon_inception.*"]),
    # Imported by a .pth file on Python 3.12 so that MXNet imports anywhere (see the module).
    py_modules=["gluon_inception_numpy_aliases"],
    package_data={"gluon_inception": ["weights/resources/*", "training/recipes/*"]},
    include_package_data=True,
    python_requires=">=3.11,<3.13",
    install_requires=REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["gluon-inception=gluon_inception.cli.main:main"]},
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: Apache Software License",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
    keywords="mxnet gluon googlenet inception imagenet horovod",
)
