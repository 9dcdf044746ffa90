"""KServe custom predictor on onnxruntime."""
