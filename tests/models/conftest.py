import os
import sys

# The shared helpers (train_helpers, ppca_model) sit beside this file; the tests that use them
# live in sub-folders that mirror models/ (nn/, data/, training/, io/, cli/).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
