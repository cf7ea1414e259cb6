"""The data layer: the fetch and split stages' library (never imports TensorFlow).

- :mod:`~imbalance.data.fetch` -- ``data.source`` -> ``data/raw``: which kind of source,
  verification, the manifest; built on
  :mod:`~imbalance.data.download` (URLs, SHA-256),
  :mod:`~imbalance.data.extract` (safe archive members, the pickle allow-list),
  :mod:`~imbalance.data.cifar_archive` (the official python archive),
  :mod:`~imbalance.data.image_folder` (``train/<class>/`` trees, image decoding) and
  :mod:`~imbalance.data.dataset` (the arrays they all decode to).
- :mod:`~imbalance.data.split` -- ``data/raw`` -> ``data/cifar2`` (CIFAR-2 per seed).
"""
