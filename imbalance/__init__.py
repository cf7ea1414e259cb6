"""Class-imbalance remedies for image classification, as a DVC pipeline.

The library behind the thin entry points in ``stages/``, one subpackage per layer:
``data`` (fetch, split), ``training`` (the only TensorFlow/Keras code), ``analysis``
(evaluate, compare) and ``tools``; see ARCHITECTURE.md.
"""
