import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402

# The machines running the suite have few cores; several torch pools fighting over them are slower.
torch.set_num_threads(min(2, os.cpu_count() or 1))
