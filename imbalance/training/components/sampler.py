"""The class-balanced samplers: ``sampler: oversample | undersample``.

The natural sampler, every remedy's default, is in :mod:`.base`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field

from imbalance.training.components.base import (
    NaturalSampler,
    Sampler,
    by_kind,
    sub_seeds,
)

if TYPE_CHECKING:
    import tensorflow as tf


class ClassBalancedSampler(Sampler):
    """Each draw takes the next image of a repeated, shuffled negative or positive stream
    with probability 0.5 / 0.5 (TensorFlow's imbalanced-data tutorial's
    ``sample_from_datasets``, with a faster coin, see below).

    Over- and undersampling differ in the negatives the stream draws from: all of them,
    or a random subset as large as the positives (:meth:`negatives`).
    """

    def negatives(self, idx: np.ndarray, n_positives: int, seed: int) -> np.ndarray:
        """Indices of the negatives the negative stream repeats."""
        return idx

    def index_batches(self, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
        import tensorflow as tf

        _, s_neg, s_pos, s_mix, s_keep = sub_seeds(seed, 5)

        def stream(idx: np.ndarray, s: int) -> tf.data.Dataset:
            ds = tf.data.Dataset.from_tensor_slices(idx.astype(np.int64))
            return ds.shuffle(len(idx), seed=s, reshuffle_each_iteration=True).repeat()

        positives = np.flatnonzero(y == 1)
        neg = stream(self.negatives(np.flatnonzero(y == 0), len(positives), s_keep), s_neg)
        pos = stream(positives, s_pos)
        # = sample_from_datasets([neg, pos], weights=[0.5, 0.5], seed=...): a fair coin per
        # draw picks the stream. Drawn 1024 coins per call rather than one: the stock
        # selector runs a TF function per image, which made the pipeline cost ~25 % of
        # training throughput on 2 cores (37k vs 600k indices/s).
        coins = tf.data.Dataset.random(seed=s_mix).batch(1024).map(lambda r: r % 2).unbatch()
        return tf.data.Dataset.choose_from_datasets([neg, pos], coins).batch(batch_size)


class Oversampler(ClassBalancedSampler):
    """Class-balanced batches; an epoch sees every negative about once."""

    kind: Literal["oversample"] = "oversample"

    def steps_per_epoch(self, counts: np.ndarray, batch_size: int) -> int:
        return math.ceil(2 * int(counts[0]) / batch_size)


class Undersampler(ClassBalancedSampler):
    """Random undersampling (imbalanced-learn's ``RandomUnderSampler``): a seeded random
    subset of as many negatives as there are positives, drawn once per run; the other
    negatives are never seen. Batches are class-balanced; an epoch sees every kept image
    about once (2 steps for 45 + 45 images): step budgets give it as many steps as any
    other remedy, over 90 distinct images."""

    kind: Literal["undersample"] = "undersample"

    def negatives(self, idx: np.ndarray, n_positives: int, seed: int) -> np.ndarray:
        keep = min(n_positives, len(idx))
        return np.sort(np.random.default_rng(seed).choice(idx, size=keep, replace=False))

    def steps_per_epoch(self, counts: np.ndarray, batch_size: int) -> int:
        return math.ceil(2 * int(counts[1]) / batch_size)


AnySampler = Annotated[
    NaturalSampler | Oversampler | Undersampler,
    Field(discriminator="kind"),
    by_kind("natural"),
]


FIELDS = {"sampler": AnySampler}
