"""Using a trained network: evaluation, prediction, export (MXNet, ONNX) and INT8/bfloat16 conversion."""
