"""The engine of Latent Explorer: a plain Python library (torch, numpy, h5py, onnx; no Qt)."""
