import os
import sys

# byo_pairs (hand-built ONNX pairs) and byo_run (CLI helpers) sit beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
