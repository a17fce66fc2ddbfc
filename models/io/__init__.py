"""Files: atomic writes, run files (HDF5), ONNX export, and the torch-free ONNX runtime."""
