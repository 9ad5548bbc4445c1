"""Using a trained network: evaluation, prediction, export (MXNet, ONNX, OpenVINO) and INT8/bfloat16/float16 conversion.

:func:`convert` turns a trained network into any precision of the package's vocabulary
(:data:`~gluon_inception.deploy.precision.PRECISIONS`); :func:`load_model_file` opens an exported
file in MXNet, ONNX Runtime or OpenVINO as a callable with its class names.
"""
from .precision import PRECISIONS, PrecisionError, check_precision, convert
from .runtimes import ExportedModel, ModelFileError, load_model_file

__all__ = ["PRECISIONS", "ExportedModel", "ModelFileError", "PrecisionError", "check_precision", "convert",
           "load_model_file"]
