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

# GluonCV 0.10.5 pins nothing. MXNet 1.9.1 declares numpy<2 and imports on no numpy >= 1.24 by
# itself: gluon_inception_numpy_aliases restores what it needs on numpy 1.26 and 2. pip honours
# MXNet's numpy<2 wherever a numpy 1.x wheel exists (Python 3.11 and 3.12: numpy 1.26); Python 3.13
# has only numpy 2, so there MXNet is installed with --no-deps (see the cpu extra). The other bounds
# are the one set with wheels on 3.11, 3.12 and 3.13 that works with numpy 1.26 and 2.
REQUIRES = [
    "numpy>=1.26,<2; python_version < '3.13'",
    "numpy>=2.1,<2.3; python_version >= '3.13'",
    "gluoncv==0.10.5.post0",
    "opencv-python>=4.10.0.84,<4.11",
    "pandas>=2.2.3,<2.4",
    "scipy>=1.14.1,<1.16",
    "matplotlib>=3.9.2,<3.11",
    "tqdm>=4.40",
    "portalocker>=2.0",
    "Pillow>=8",
    "scikit-learn>=0.24",
    # GluonCV imports distutils, which Python 3.12 removed; setuptools provides it.
    "setuptools; python_version >= '3.12'",
]

EXTRAS = {
    # MXNet 1.9.1's metadata requires numpy<2, which has no Python 3.13 wheel, so pip cannot install
    # it there with its dependencies: on 3.13 it is `pip install --no-deps mxnet==1.9.1` after this
    # (scripts/setup.sh does it; gluon_inception's import error says so).
    "cpu": ["mxnet==1.9.1; python_version < '3.13'"],
    "gpu": ["mxnet-cu112==1.9.1; python_version < '3.13'"],
    # Horovod must be built against the installed MXNet; see README "Horovod".
    "horovod": ["horovod==0.28.1"],
    # mx.onnx (1.9.1) needs onnx.mapping: 1.18.0 is the last onnx that has it, and the first with
    # Python 3.13 wheels (it has them for 3.11 and 3.12 too).
    # --precision int8 for onnx files is ONNX Runtime's quantizer, which imports ml_dtypes (onnxruntime does
    # not install it; 0.5 is the last with wheels for numpy 1.26 as well as 2).
    "onnx": ["onnx==1.18.0", "onnxruntime>=1.15", "ml_dtypes>=0.5.4,<0.6"],
    # --format openvino: OpenVINO converts our ONNX export (so onnx too) and runs the IR.
    "openvino": ["onnx==1.18.0", "openvino>=2026.4,<2027"],
    # --precision int8 for openvino files: NNCF calibrates the IR in OpenVINO.
    "nncf": ["nncf>=3.4,<4", "openvino>=2026.4,<2027"],
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
    # Imported by a .pth file so that MXNet imports anywhere, horovodrun included (see the module).
    py_modules=["gluon_inception_numpy_aliases"],
    package_data={"gluon_inception": ["weights/resources/*", "training/recipes/*"]},
    include_package_data=True,
    python_requires=">=3.11,<3.14",
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
        "Programming Language :: Python :: 3.13",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
    keywords="mxnet gluon googlenet inception imagenet horovod",
)
