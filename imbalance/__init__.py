"""Class-imbalance remedies for image classification, as a DVC pipeline.

The library behind the thin entry points in ``stages/``. Modules that stages without
TensorFlow import (params, cli, io, fetch, split, evaluate, compare) must not import it.
"""
