"""Files: atomic writes, run files (layout, reader, and the writer as a training callback), ONNX export, the torch-free ONNX runtime."""
