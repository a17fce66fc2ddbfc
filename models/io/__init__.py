"""Files: atomic writes, run files (the writer is a training callback), ONNX export and runtime."""
