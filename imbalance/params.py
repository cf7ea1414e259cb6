"""Typed, validated view of params.yaml.

Every stage calls :func:`load` first, so a misspelt key, a wrong YAML type or a value out
of range fails before any output is touched, with one line naming the param (see
:class:`imbalance.cli.UserError`). pydantic does the type checking; the checks that need
more than one field (the classes differ, a retrain remedy starts from a declared one)
live in validators here, the checks that need the data (counts above what the source
holds) live in the stage that has the data.

The schema of a remedy is its components' classes (:mod:`imbalance.training.components`:
params and behaviour in one class each, one module per kind). Loading params.yaml checks
only that ``remedies`` and ``retrain`` are mappings of remedies (and that a retrain
remedy starts from a declared one); a remedy's composition is validated when it is asked
for (:meth:`Params.remedy`, :attr:`Params.all_remedies`), which imports the modules of
the kinds it uses and no other. So fetch and split load no component at all, evaluate
only the training-set kind, and a training stage only its own remedy's kinds: none of
them depends on the modules of components it does not use (dvc.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from imbalance.cli import UserError

if TYPE_CHECKING:
    from imbalance.training.components import Remedy

PARAMS_FILE = Path("params.yaml")


class _Strict(BaseModel):
    """Unknown keys are errors (a misspelt key would otherwise be silently ignored)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Source(_Strict):
    """Where one copy of CIFAR-10 is and the SHA-256 it must have."""

    location: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^([0-9a-fA-F]{64})?$")


class Data(_Strict):
    """``source`` names the entry of ``sources`` the study runs on.

    Named, so that params.yaml says which data the committed results came from (and
    ``dvc params diff`` shows a switch), while every other copy stays one ``-S`` away.
    """

    source: str = Field(min_length=1)
    sources: dict[str, Source] = Field(min_length=1)
    max_extract_bytes: int = Field(gt=0)

    @model_validator(mode="after")
    def _known(self) -> Data:
        if self.source not in self.sources:
            raise ValueError(
                f"data.source is {self.source!r}, which is not an entry of data.sources; "
                f"choose one of {sorted(self.sources)} or add it under data.sources"
            )
        return self

    @property
    def chosen(self) -> Source:
        return self.sources[self.source]


class Classes(_Strict):
    negative: str = Field(min_length=1)
    positive: str = Field(min_length=1)

    @model_validator(mode="after")
    def _differ(self) -> Classes:
        if self.negative == self.positive:
            raise ValueError(
                f"classes.negative and classes.positive are both {self.negative!r}; "
                "name two different classes"
            )
        return self


class Split(_Strict):
    n_majority: int = Field(gt=0)
    n_minority: int = Field(gt=0)
    val_fraction: float = Field(gt=0.0, lt=1.0)
    validation: Literal["holdout", "test", "kfold"]
    #: Folds of ``validation: kfold`` (stratified; every fold needs a positive).
    folds: int = Field(default=3, ge=2)


class Model(_Strict):
    filters: list[int] = Field(min_length=3, max_length=3)
    kernel_size: int = Field(gt=0)
    dense_units: int = Field(gt=0)

    @model_validator(mode="after")
    def _positive(self) -> Model:
        if min(self.filters) <= 0:
            raise ValueError("model.filters must be three positive integers")
        return self


class EarlyStopping(_Strict):
    monitor: Literal["val_auc", "val_pr_auc", "val_loss"]
    #: Optimizer steps without improvement before stopping (a multiple of check_every).
    patience: int = Field(gt=0)


class Train(_Strict):
    """Budgets in optimizer steps, so that every remedy, whatever its sampler's epoch
    length, trains, is validated and may be stopped after the same number of batches.

    ``max_steps`` and ``early_stopping.patience`` must be multiples of ``check_every``:
    training stops and improvement is seen only at checks, so any other value would
    silently be rounded to a whole number of checks.
    """

    max_steps: int = Field(gt=0)
    check_every: int = Field(gt=0)
    stopping: Literal["early_stopping", "budget"]
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0.0)
    optimizer: Literal["adam", "sgd", "rmsprop"]
    early_stopping: EarlyStopping
    predict_batch_size: int = Field(gt=0)
    threads: int = Field(ge=0)

    @model_validator(mode="after")
    def _whole_checks(self) -> Train:
        every = self.check_every
        for key, steps in (
            ("train.max_steps", self.max_steps),
            ("train.early_stopping.patience", self.early_stopping.patience),
        ):
            if steps % every:
                lower, upper = steps // every * every, (steps // every + 1) * every
                nearest = f"{lower} or {upper}" if lower else str(upper)
                raise ValueError(
                    f"{key} is {steps}, not a multiple of train.check_every ({every}): "
                    f"steps are only checked every {every}; use e.g. {nearest}"
                )
        return self

    @property
    def checks(self) -> int:
        """Validation checks at most (Keras epochs of ``check_every`` steps)."""
        return self.max_steps // self.check_every


class Evaluate(_Strict):
    threshold: float = Field(gt=0.0, lt=1.0)
    threshold_objective: Literal["balanced_accuracy", "f1"]
    plot_points: int = Field(ge=10)


#: A remedy in a question: its name, or its composition (a mapping as under `remedies`;
#: one with `start` is a retrain remedy), or "@best": each remedy that could be the best.
RemedyRef = str | dict[str, Any]


class Question(_Strict):
    """A primary question of the study (``compare.questions.<id>``), checked generically by
    :mod:`imbalance.analysis.claims`. ``pairs`` compares ``a - b`` paired by seed (every
    pair must agree); ``remedy`` alone tests one remedy's mean (kind ``bound``)."""

    claim: str = Field(min_length=1)
    study: str = ""
    metric: str = Field(pattern=r"^(test|tuned)\.[a-z_]+$")
    kind: Literal["bound", "superiority", "non_inferiority", "equivalence", "best"]
    remedy: RemedyRef | None = None
    pairs: list[list[RemedyRef]] = []
    #: bound: "below" or "above" ``threshold``; superiority / non-inferiority / best: which
    #: direction of the metric is better
    direction: Literal["below", "above", "higher", "lower"] = "higher"
    #: bound: the bound; non_inferiority / equivalence: the margin (> 0)
    threshold: float = 0.0
    #: one sentence per verdict (held / did not hold): what it means in practice
    practice: dict[str, str] = {}

    @model_validator(mode="after")
    def _shape(self) -> Question:
        if self.kind == "best":
            if self.direction not in ("higher", "lower"):
                raise ValueError("a `best` question's direction is higher or lower")
            return self
        if any(len(pair) != 2 for pair in self.pairs):
            raise ValueError("each entry of `pairs` is [a, b]: the difference a - b")
        if (self.remedy is None) == (not self.pairs):
            raise ValueError("give either `remedy` (one remedy's mean) or `pairs`, not both")
        if self.remedy is not None and self.kind != "bound":
            raise ValueError(f"kind {self.kind} compares remedies: give `pairs`")
        if self.kind == "bound" and self.direction not in ("below", "above"):
            raise ValueError("a `bound` question's direction is below or above")
        if self.kind in ("superiority", "non_inferiority") and self.direction not in (
            "higher",
            "lower",
        ):
            raise ValueError(f"a `{self.kind}` question's direction is higher or lower")
        if self.kind in ("non_inferiority", "equivalence") and self.threshold <= 0:
            raise ValueError(f"a `{self.kind}` question needs a margin `threshold` > 0")
        return self


class Sequential(_Strict):
    """The group-sequential plan (:func:`imbalance.analysis.stats.nominal_levels`), fixed
    before the first look: the seeds per remedy at which the questions are checked (the
    last is the cap) and the alpha-spending function."""

    looks: list[int] = Field(default=[5, 10, 15, 20, 30, 40, 50], min_length=1)
    spending: Literal["obrien_fleming", "pocock"] = "pocock"

    @model_validator(mode="after")
    def _increasing(self) -> Sequential:
        if any(b <= a for a, b in zip(self.looks, self.looks[1:], strict=False)) or (
            self.looks[0] < 2
        ):
            raise ValueError("sequential.looks must be increasing seed counts of at least 2")
        return self


class Compare(_Strict):
    """The comparison's statistics (see :mod:`imbalance.analysis.stats`).

    ``p_adjust`` and ``also_against`` have defaults so that a params file written before
    they existed (an older commit, an experiment of the sweep) still validates.
    """

    confidence: float = Field(gt=0.0, lt=1.0)
    reference: str
    also_against: list[str] = []
    p_adjust: Literal["holm", "bh", "none"] = "holm"
    questions: dict[str, Question] = {}
    sequential: Sequential = Sequential()


class Runtime(_Strict):
    """How stages run, not what they compute: no stage declares it, so no change re-runs."""

    warm_idle_s: int = Field(default=60, ge=0)
    seconds_per_pass: float = Field(default=0.0089, gt=0.0)


class Predict(_Strict):
    """Defaults of ``./dev.sh predict`` (:mod:`imbalance.training.predict`): no stage
    declares this section, so changing it re-runs nothing. The remedy is checked when
    predicting, not here, so that a params file with fewer remedies still validates."""

    remedy: str = Field(default="oversample_augment", min_length=1)
    seed: int = Field(default=0, ge=0)


class Params(_Strict):
    seeds: list[int] = Field(min_length=1)
    #: Seeds remedies are designed on (validation only), never reported: disjoint from
    #: ``seeds`` so that a design is frozen before the seeds it is reported on are run.
    tuning_seeds: list[int] = []
    data: Data
    classes: Classes
    split: Split
    model: Model
    train: Train
    evaluate: Evaluate
    compare: Compare
    #: Compositions as params.yaml holds them; validated per remedy on use (:meth:`remedy`).
    remedies: dict[str, dict[str, Any]] = Field(min_length=1)
    retrain: dict[str, dict[str, Any]] = {}
    runtime: Runtime = Runtime()
    predict: Predict = Predict()

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError("seeds must be distinct non-negative integers")
        tuning = self.tuning_seeds
        if len(set(tuning)) != len(tuning) or (tuning and min(tuning) < 0):
            raise ValueError("tuning_seeds must be distinct non-negative integers")
        shared = sorted(set(tuning) & set(self.seeds))
        if shared:
            raise ValueError(
                f"tuning_seeds and seeds share {shared}: a design must not be tuned on a "
                "seed it is reported on; pick tuning seeds outside `seeds`"
            )
        both = set(self.remedies) & set(self.retrain)
        if both:
            raise ValueError(f"remedy names declared twice (remedies and retrain): {sorted(both)}")
        for key, name in [
            ("compare.reference", self.compare.reference),
            *(("compare.also_against", n) for n in self.compare.also_against),
        ]:
            if name not in self.names:
                raise ValueError(
                    f"{key} names {name!r}, which is not a declared remedy; choose one of "
                    f"{sorted(self.names)}"
                )
        return self

    @property
    def names(self) -> list[str]:
        """Every declared remedy's name, scratch ones first, in declaration order."""
        return [*self.remedies, *self.retrain]

    @property
    def all_remedies(self) -> dict[str, Remedy]:
        """Every declared remedy, validated, scratch ones first, in declaration order
        (imports the modules of every kind any remedy uses)."""
        return {name: self.remedy(name) for name in self.names}

    def _section(self, name: str) -> str:
        if name in self.remedies:
            return "remedies"
        if name in self.retrain:
            return "retrain"
        raise UserError(
            f"unknown remedy {name!r}: declare it under `remedies` or `retrain` in "
            f"params.yaml (declared: {', '.join(self.names)})"
        )

    def remedy(self, name: str) -> Remedy:
        """The composition of remedy ``name``, validated: loads its kinds' modules only."""
        from imbalance.training.components import Remedy, Retrain

        section = self._section(name)
        spec = getattr(self, section)[name]
        try:
            remedy = (Retrain if section == "retrain" else Remedy).model_validate(spec)
        except ValidationError as err:
            raw = {section: {name: spec}}
            raise UserError(_format(err, raw, prefix=(section, name))) from None
        try:
            remedy.train_config(self.train)
        except ValueError as err:
            raise UserError(f"params.yaml: {section}.{name}.{err}") from None
        if isinstance(remedy, Retrain) and remedy.start.remedy not in self.remedies:
            raise UserError(
                f"params.yaml: retrain.{name}.start is {remedy.start.remedy!r}, which is not "
                f"declared under remedies; choose one of {sorted(self.remedies)}"
            )
        return remedy

    def train_set(self, name: str) -> str:
        """The training set (``imbalanced`` | ``balanced``) remedy ``name`` trains on,
        read through the ``train_set`` component alone (evaluate needs nothing else)."""
        from imbalance.training.components import TrainingSet

        section = self._section(name)
        spec = getattr(self, section)[name]
        try:
            return TrainingSet.model_validate(spec.get("train_set", {})).kind
        except ValidationError as err:
            raw = {section: {name: spec}}
            raise UserError(_format(err, raw, prefix=(section, name, "train_set"))) from None


def _yaml_path(loc: tuple[int | str, ...], raw: Any) -> tuple[str, str | None]:
    """Where an error is, as params.yaml spells it, and the variant (``kind``) it is in.

    pydantic's location also names what the YAML does not hold: the variant of a kind
    with variants (``loss.focal.gamma``) and the param a bare value stands for
    (``posthoc_tau.tau``, see ``Component.shorthand``). Walking the input drops them; a
    key the input lacks is kept only as the last one (a missing key).
    """
    node, keys, variant = raw, [], None
    for i, part in enumerate(loc):
        in_input = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if in_input:
            node = node[part]
        elif not (isinstance(node, dict) and i == len(loc) - 1):  # else: a missing key
            if isinstance(node, dict):
                variant = str(part)  # the tag of a variant
            continue  # or the param a bare value stands for
        keys.append(str(part))
    return ".".join(keys) or "params", variant


def _format(err: ValidationError, raw: Any, prefix: tuple[str, ...] = ()) -> str:
    """One line for the first error; ``prefix``: where in params.yaml the validated value is."""
    first = err.errors()[0]
    where, variant = _yaml_path((*prefix, *first["loc"]), raw)
    msg = first["msg"]
    if first["type"] == "value_error":  # our own cross-field checks name the params
        return f"params.yaml: {msg.removeprefix('Value error, ')}"
    if first["type"] == "extra_forbidden":
        if variant is None:
            msg = "unknown key (misspelt?); remove it or fix its name"
        else:
            msg = (
                f"unknown key for kind {variant!r} (misspelt, or a param of another kind?); "
                "remove it or fix its name"
            )
    elif first["type"] == "union_tag_invalid":
        ctx = first.get("ctx", {})
        msg = f"unknown kind {ctx.get('tag')!r}; choose one of {ctx.get('expected_tags')}"
    elif first["type"] != "missing":
        msg = f"{msg} (got {first['input']!r})"
    return f"params.yaml: {where}: {msg}"


def parse(raw: Any) -> Params:
    """Validate an already-loaded params mapping (tests use this directly)."""
    if not isinstance(raw, dict):
        raise UserError("params.yaml: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise UserError(_format(err, raw)) from None


def load(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; one clear line on any problem."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run from the project root") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse(raw)
