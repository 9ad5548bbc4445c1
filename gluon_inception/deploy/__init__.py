"""Using a trained network: evaluation, prediction, export (MXNet, ONNX) and INT8/bfloat16/float16 conversion.

:func:`convert` turns a trained network into any precision of the package's vocabulary
(:data:`~gluon_inception.deploy.precision.PRECISIONS`).
"""
from .precision import PRECISIONS, PrecisionError, check_precision, convert

__all__ = ["PRECISIONS", "PrecisionError", "check_precision", "convert"]
