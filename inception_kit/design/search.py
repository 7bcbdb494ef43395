"""Search the widths of the 1×1 reductions for accuracy under a budget, on Optuna.

`fit` scales every reduction by one factor until the cost fits; `search` trains candidates
and keeps the Pareto front of accuracy against MACs. The search space: the width of every
selected 1×1 reduction (`design.fit`'s reductions: a 1×1 conv narrowing the channels right
before a k×k conv), multiples of `multiple` from one multiple up to its original width; with
`widths="all"` the k×k convs they feed as well (which changes the block's output width).

The rules, stated once:

- **Every candidate is costed analytically first** (`analyse(plan)`: exact integer
  arithmetic, milliseconds). One over the budget is never trained: it is recorded as a
  complete, infeasible trial (`Trial.set_constraint`, Optuna 5's successor of `constraints_func`, tells the
  sampler learns to stay inside) with no accuracy. `over_budget_trained` in front.json counts
  the trials trained over budget, from the records; it is 0.
- **`trials` counts the candidates evaluated within budget**, by every worker together.
  Trial k is trained only if fewer than `trials` live trials precede it (by Optuna's trial
  number: live = complete within budget, running, or waiting); otherwise it is recorded as
  pruned (`surplus`). Predecessors only ever die (fail, turn out over budget), so no more than
  `trials` are ever evaluated, and workers keep going until exactly that many are complete.
  A candidate already evaluated (the same widths) takes that trial's accuracy, untrained.
- **A killed worker's trial is retried**: RDB storages (SQLite, PostgreSQL, any SQLAlchemy
  URL) carry Optuna's heartbeat; a trial whose heartbeat stops is failed by the next worker
  that looks and re-queued, same widths, by `RetryHeartbeatStaleTrialCallback`. (Optuna's
  journal storage has no heartbeat: a killed trial there stays running, and the search waits
  for it; use an RDB URL where workers may die.)
- **Accuracy**: each trial trains on `subset` training examples (all when None) for `epochs`
  and is scored on a held-out split of the training data. The front's designs are then
  trained on all the training data with `seeds` seeds and scored on the test split where the
  data has one (else the held-out split); the front reports the mean.
- **Resumable**: the study lives in its storage (by default `sqlite:///OUT/search.db`); the
  same call continues it, trials and final seeds alike. Its settings (spec, budget, space,
  epochs, data) are kept in the study and a call with other settings is refused.

Outputs under `out`: front.json (the issue's schema), front.png, front/NAME_tN.yaml (each
front design written like `fit` writes: the user's file with numbers replaced and commented),
written together or not at all. The training itself is a `Trainer` (`inception_kit.train.trials.KerasTrainer`
trains with `inception_kit.train.fit`); tests pass a fake one. Plain Python until a trainer runs.

Latency: pass `latency` (a callable Plan -> predicted milliseconds, the latency model's
hook) and optionally `latency_ms` (its budget); trials then record `latency_ms`, it becomes
a third objective and, with a budget, a constraint.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Union

from ..analysis import analyse
from ..errors import ArgumentError, Failure
from ..files import UnsafeDestination, staged_dir, staged_file
from ..loading import load
from ..planner import DEFAULT_BUDGET, BlockPlan, Budget, Op, Plan, Step, plan
from ..progress import Progress, no_progress
from ..spec.types import LayerSpec, ModelSpec, Node
from ..tables import human, text_table
from .fit import Change, Fitter, Reduction, parse_count, rewrite

Source = Union[Plan, ModelSpec, str, "os.PathLike[str]"]
WIDTHS = ("reductions", "all")
SAMPLERS = ("tpe", "nsga2")
MARKER = "search.json"  # in `out`: the proof this folder is a search's (and its settings)
OVER_BUDGET_LIMIT = 50  # over-budget candidates allowed per trial asked for, before giving up
ALIVE = ("COMPLETE", "RUNNING", "WAITING")


class SearchFailed(Failure):
    """The search could not go on (its message says why)."""


@dataclass
class Knob:
    """One width the search chooses: a 1×1 reduction (or, with widths='all', the k×k conv it feeds)."""

    name: str  # the layer's name in the plan
    path: str  # where the spec writes its width
    original: int
    step: int  # widths are multiples of this
    reduction: Reduction  # the spec object and op (fit's type: fit's rewrite takes it)

    @property
    def choices(self) -> tuple[int, int]:
        """(lowest, highest) width: one step, up to the original rounded down to a step."""
        return self.step, max(self.step, self.original // self.step * self.step)


class Trainer(Protocol):
    """Trains a candidate and returns its accuracy (a fraction). `final`: the front's full
    training (all the training data, scored on the test split where there is one)."""

    def __call__(self, plan: Plan, *, epochs: int, seed: int, subset: int | None, final: bool) -> float: ...


@dataclass
class TrialRecord:
    """One trial as front.json lists it."""

    number: int
    state: str
    macs: int | None
    params: int | None
    accuracy: float | None
    trained: bool
    latency_ms: float | None = None
    widths: dict[str, int] = field(default_factory=dict)
    over_budget: bool = False
    note: str = ""  # 'over budget', 'surplus', 'same as trial N', 'retry of trial N'

    def as_json(self, with_latency: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "number": self.number,
            "state": self.state,
            "macs": self.macs,
            "params": self.params,
        }
        if with_latency:
            out["latency_ms"] = self.latency_ms
        out.update(accuracy=self.accuracy, trained=self.trained)
        return out


@dataclass
class FrontPoint:
    """A design of the final front: its trial, costs, the seeds' accuracies and its spec."""

    trial: int
    macs: int
    params: int
    widths: dict[str, int]
    search_accuracy: float
    accuracies: list[float]
    spec: str  # the file under out (front/NAME_tN.yaml)
    text: str  # its YAML
    latency_ms: float | None = None

    @property
    def accuracy(self) -> float:
        return statistics.fmean(self.accuracies) if self.accuracies else self.search_accuracy

    @property
    def sd(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0


@dataclass
class SearchResult:
    """What `search` found; `table()` is the front as text."""

    study: str
    budget: dict[str, Any]
    trials: list[TrialRecord]
    front: list[FrontPoint]
    original: dict[str, int]  # the spec's own MACs and params
    out: Path | None
    seeds: int
    worker: bool = False

    @property
    def over_budget_trained(self) -> int:
        return sum(1 for t in self.trials if t.trained and t.over_budget)

    @property
    def trained(self) -> int:
        return sum(1 for t in self.trials if t.trained)

    def as_json(self) -> dict[str, Any]:
        """front.json: exactly the issue's schema."""
        lat = "latency_ms" in self.budget
        return {
            "budget": self.budget,
            "trials": [t.as_json(lat) for t in self.trials],
            "front": [
                {"trial": p.trial, "macs": p.macs, "accuracy": p.accuracy, "spec": p.spec} for p in self.front
            ],
            "over_budget_trained": self.over_budget_trained,
        }

    def table(self) -> str:
        """The front: trial, MACs (and share of the original's), params, accuracy (mean ± sd of seeds)."""
        lat = any(p.latency_ms is not None for p in self.front)
        rows = []
        for p in self.front:
            row = [str(p.trial), human(p.macs), f"{p.macs / self.original['macs']:.2f}", human(p.params)]
            if lat:
                row.append(f"{p.latency_ms:.2f}" if p.latency_ms is not None else "")
            row += [
                f"{p.search_accuracy:.4f}",
                f"{p.accuracy:.4f} ± {p.sd:.4f}" if p.accuracies else "",
                str(len(p.accuracies)),
                p.spec,
            ]
            rows.append(row)
        head = [
            "trial",
            "MACs",
            "x orig",
            "params",
            *(["latency ms"] if lat else []),
            "search acc",
            "final acc (mean ± sd)",
            "seeds",
            "spec",
        ]
        return text_table(head, rows, set(range(len(head) - 1)))


# ---------------------------------------------------------------------------- the space


def space(
    model: ModelSpec,
    planned: Plan,
    blocks: str | None,
    widths: str,
    multiple: int,
    budget: Budget = DEFAULT_BUDGET,
) -> list[Knob]:
    """The widths the search chooses, in build order (fit's reductions; with 'all' also the
    k×k convs they feed)."""
    if widths not in WIDTHS:
        raise ArgumentError("widths", "one of " + ", ".join(WIDTHS), widths)
    reductions = Fitter(model, blocks, multiple, budget, planned).reductions
    layers = _layers(model.layers, planned.layers)
    knobs: list[Knob] = []
    for r in reductions:
        if r.width > r.step:
            knobs.append(
                Knob(r.op.name, r.layer.paths.get("filters", f"{r.op.path}.filters"), r.width, r.step, r)
            )
        if widths == "all":
            f = r.feeds
            width, step = f.args["filters"], math.lcm(multiple, f.args.get("groups", 1))
            if width > step:
                fed = Reduction(layers[f.name], f, f, r.block, step)
                knobs.append(
                    Knob(f.name, fed.layer.paths.get("filters", f"{f.path}.filters"), width, step, fed)
                )
    if not knobs:
        raise ArgumentError(
            "blocks",
            "blocks whose 1x1 reductions are wider than one multiple",
            blocks or "every block",
            hint=f"multiple {multiple}",
        )
    return knobs


def _layers(nodes: list[Node], steps: list[Step]) -> dict[str, LayerSpec]:
    """Op name -> the spec object it was planned from (a plan's steps line up with its nodes)."""
    out: dict[str, LayerSpec] = {}
    for node, step in zip(nodes, steps):
        if isinstance(step, BlockPlan):
            for name, branch in step.branches.items():
                out.update(_layers(node.branches[name], branch))  # type: ignore[union-attr]
        elif isinstance(step, Op):
            out[step.name] = node  # type: ignore[assignment]
    return out


@contextlib.contextmanager
def _widths_set(knobs: Sequence[Knob], widths: dict[str, int]) -> Any:
    """The model with `widths` in place for the block's duration, then as it was."""
    old = [k.reduction.layer.args["filters"] for k in knobs]
    try:
        for k in knobs:
            k.reduction.layer.args["filters"] = widths.get(k.name, k.original)
        yield
    finally:
        for k, w in zip(knobs, old):
            k.reduction.layer.args["filters"] = w


def cost(model: ModelSpec, knobs: Sequence[Knob], widths: dict[str, int]) -> Plan:
    """The plan of the model with `widths` (exact costs by `analyse(result)`), planned on a copy."""
    with _widths_set(knobs, widths):
        copied = copy.deepcopy(model)
    return plan(copied)


def spec_text(model: ModelSpec, knobs: Sequence[Knob], widths: dict[str, int], header: str) -> str:
    """The design as a spec, written like `fit` writes: the user's file with each changed
    number replaced and commented, or the expanded spec with a comment per change."""
    changes = [
        Change(k.name, k.path, k.original, widths[k.name]) for k in knobs if widths[k.name] != k.original
    ]
    with _widths_set(knobs, widths):
        target = plan(copy.deepcopy(model))
        text, _ = rewrite(model, [k.reduction for k in knobs], changes, target)
    return header + text


# ------------------------------------------------------------------------------ storage


def open_storage(url: str | None, out: Path | None, heartbeat: int = 10) -> Any:
    """An Optuna storage for `url`: 'journal:PATH' (a journal file), any SQLAlchemy URL
    ('sqlite:///PATH', 'postgresql://...'), with heartbeats and retries; None:
    sqlite:///OUT/search.db."""
    import optuna

    if url is None:
        if out is None:
            raise ArgumentError("storage", "a storage URL when no output folder is given (worker=True)")
        url = f"sqlite:///{out / 'search.db'}"
    if url.startswith("journal:"):
        path = url[len("journal:") :]
        if not path or not Path(path).parent.is_dir():
            raise ArgumentError("storage", "journal:PATH with PATH in an existing folder", url)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            return JournalStorage(JournalFileBackend(path))
        except OSError as err:
            raise ArgumentError(
                "storage", "a journal file that can be written", url, hint=err.strerror
            ) from None
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(url)
        parsed.get_dialect()
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ValueError) as err:
        raise ArgumentError(
            "storage",
            "sqlite:///PATH, journal:PATH or an SQLAlchemy URL (postgresql://user@host:port/db)",
            url,
            hint=str(err).split("\n")[0],
        ) from None
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        if not Path(parsed.database).parent.is_dir():
            raise ArgumentError("storage", "an SQLite file in an existing folder", url)
    # SQLite serialises writers with a file lock: a worker waits for it (60 s) rather than fail
    # with "database is locked" while another creates the tables or writes a trial.
    sqlite = parsed.drivername.startswith("sqlite")
    engine: dict[str, Any] = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                engine_kwargs=engine,
            )
        except sqlalchemy.exc.IntegrityError:
            # Workers starting together all create Optuna's tables; on PostgreSQL the losers of that
            # race see a duplicate key. The tables exist then: open again.
            time.sleep(0.2 * (attempt + 1))
        except sqlalchemy.exc.OperationalError as err:
            if not (sqlite and "locked" in str(err)):
                first = str(getattr(err, "orig", None) or err).strip().split("\n")[0]
                raise ArgumentError(
                    "storage", "a database the search can open", _shown_url(parsed), hint=first
                ) from None
            time.sleep(0.5 * (attempt + 1))  # the same race on SQLite, past its lock timeout
        except (sqlalchemy.exc.SQLAlchemyError, OSError) as err:
            first = str(getattr(err, "orig", None) or err).strip().split("\n")[0]
            raise ArgumentError(
                "storage", "a database the search can open", _shown_url(parsed), hint=first
            ) from None
    raise ArgumentError("storage", "a database whose tables can be created", _shown_url(parsed))


def _shown_url(parsed: Any) -> str:
    return str(parsed.render_as_string(hide_password=True))


# ------------------------------------------------------------------------------- search


@dataclass
class _Setup:
    model: ModelSpec
    planned: Plan
    knobs: list[Knob]
    macs: int | None
    params: int | None
    latency: Callable[[Plan], float] | None
    latency_ms: float | None

    def constraint(self, macs: int, params: int, latency: float | None) -> dict[str, float]:
        """Optuna's constraint values (`Trial.set_constraint`): > 0 is over budget, by that share."""
        out = {}
        if self.macs is not None:
            out["macs"] = (macs - self.macs) / self.macs
        if self.params is not None:
            out["params"] = (params - self.params) / self.params
        if self.latency_ms is not None and latency is not None:
            out["latency_ms"] = (latency - self.latency_ms) / self.latency_ms
        return out


def _budget(setup: _Setup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if setup.macs is not None:
        out["macs"] = setup.macs
    if setup.params is not None:
        out["params"] = setup.params
    if setup.latency is not None:
        out["latency_ms"] = setup.latency_ms
    return out


def search(
    spec: Source,
    *,
    trainer: Trainer,
    trials: int,
    epochs: int,
    macs: int | str | None = None,
    params: int | str | None = None,
    blocks: str | None = None,
    widths: str = "reductions",
    multiple: int = 8,
    subset: int | None = None,
    out: str | os.PathLike[str] | None = None,
    storage: str | None = None,
    study: str | None = None,
    worker: bool = False,
    seeds: int = 3,
    front_size: int | None = None,
    final_epochs: int | None = None,
    sampler: str = "tpe",
    seed: int = 0,
    data: str = "",
    heartbeat: int = 10,
    latency: Callable[[Plan], float] | None = None,
    latency_ms: float | None = None,
    budget: Budget = DEFAULT_BUDGET,
    progress: Progress = no_progress,
) -> SearchResult:
    """Searches the reduction widths of `spec` for the most accurate designs within a budget.

    Args:
        spec: a Plan, a Model or a YAML path (a front design is that file edited).
        trainer: trains a candidate, returns its accuracy (see `Trainer`; `train.trials.KerasTrainer`).
        trials: candidates evaluated within budget, by all workers together.
        epochs: epochs per trial; `final_epochs` (default `epochs`) for the front's seeds.
        macs, params: the budget (at least one), counts or '1.2G', '5M'.
        blocks, multiple: as for `fit` (a glob over top-level blocks; widths in multiples).
        widths: 'reductions' (the 1x1 reductions) or 'all' (and the kxk convs they feed).
        subset: training examples per trial (None: all); the front trains on all.
        out: the folder of the results; None only for a worker.
        storage, study: Optuna's storage URL (default sqlite:///OUT/search.db) and study name
            (default the spec's name).
        worker: run trials only (join a search another process finishes and writes).
        seeds: seeds per front design (the front's accuracy is their mean).
        front_size: retrain at most this many front designs, spread over MACs (the cheapest and
            the most accurate first); None: all.
        sampler: 'tpe' or 'nsga2' (both multi-objective, both honour the constraints); `seed` seeds it.
        data: a label of the data, kept with the study's settings (a resume with other data is refused).
        heartbeat: seconds between a running trial's heartbeats (a dead worker's trial is retried
            after two).
        latency, latency_ms: the latency model's hook (see the module doc).
        budget: the resource limits every spec is checked against.
        progress: told of every trial and every front training.

    Raises:
        ArgumentError: a bad budget, space, storage or setting, a folder that is not a search's,
            or a study made with other settings.
        SearchFailed: the sampler keeps proposing candidates over budget.
    """
    import warnings

    import optuna

    with (
        warnings.catch_warnings()
    ):  # Optuna marks heartbeats and retries experimental: said once, in the docs
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _search(
            spec,
            trainer,
            trials,
            epochs,
            macs,
            params,
            blocks,
            widths,
            multiple,
            subset,
            out,
            storage,
            study,
            worker,
            seeds,
            front_size,
            final_epochs,
            sampler,
            seed,
            data,
            heartbeat,
            latency,
            latency_ms,
            budget,
            progress,
        )


def _search(
    spec: Source,
    trainer: Trainer,
    trials: int,
    epochs: int,
    macs: Any,
    params: Any,
    blocks: str | None,
    widths: str,
    multiple: int,
    subset: int | None,
    out: Any,
    storage: str | None,
    study: str | None,
    worker: bool,
    seeds: int,
    front_size: int | None,
    final_epochs: int | None,
    sampler: str,
    seed: int,
    data: str,
    heartbeat: int,
    latency: Callable[[Plan], float] | None,
    latency_ms: float | None,
    budget: Budget,
    progress: Progress,
) -> SearchResult:
    import optuna

    setup, settings = _prepare(
        spec,
        trials,
        epochs,
        macs,
        params,
        blocks,
        widths,
        multiple,
        subset,
        seeds,
        front_size,
        final_epochs,
        sampler,
        seed,
        data,
        latency,
        latency_ms,
        budget,
    )
    out_path = None if out is None else Path(out)
    if out_path is None and not worker:
        raise ArgumentError("out", "a folder for the results (only a worker runs without one)")
    # A storage named is opened before the folder is claimed: a bad URL leaves nothing written.
    store = open_storage(storage, out_path, heartbeat) if storage is not None else None
    if out_path is not None and not worker:
        _claim_folder(out_path, settings)
    if store is None:
        store = open_storage(storage, out_path, heartbeat)
    name = study or setup.model.name
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions: list[Any] = ["maximize", "minimize"] + (["minimize"] if latency is not None else [])
    samplers = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler}
    worker_seed = seed if not worker else seed + 1 + os.getpid() % 100_000  # workers explore differently
    kw: dict[str, Any] = {
        "seed": worker_seed
    }  # constraints: Trial.set_constraint (constraints_func is deprecated)
    if sampler == "nsga2":
        kw["population_size"] = max(4, min(50, trials // 3))
    try:
        st = optuna.create_study(
            study_name=name,
            storage=store,
            directions=directions,
            sampler=samplers[sampler](**kw),
            load_if_exists=True,
        )
    except Exception as err:  # a storage that connected but refuses the study (a version, a lock)
        raise ArgumentError(
            "storage",
            "a storage that can hold the study",
            storage or "the default",
            hint=str(err).split("\n")[0],
        ) from None
    _check_settings(st, settings, name)
    _run_trials(st, setup, trainer, trials, epochs, subset, seed, progress, heartbeat)
    records = _records(st)
    budget_json = _budget(setup)
    original = {"macs": analyse(setup.planned).total.macs, "params": analyse(setup.planned).total.params}
    if worker:
        return SearchResult(name, budget_json, records, [], original, None, seeds, worker=True)
    front = _final(st, setup, trainer, seeds, front_size, final_epochs or epochs, seed, progress)
    result = SearchResult(name, budget_json, records, front, original, out_path, seeds)
    _write(result, setup, out_path)  # type: ignore[arg-type]
    return result


def _prepare(
    spec: Source,
    trials: int,
    epochs: int,
    macs: Any,
    params: Any,
    blocks: str | None,
    widths: str,
    multiple: int,
    subset: int | None,
    seeds: int,
    front_size: int | None,
    final_epochs: int | None,
    sampler: str,
    seed: int,
    data: str,
    latency: Callable[[Plan], float] | None,
    latency_ms: float | None,
    budget: Budget,
) -> tuple[_Setup, dict[str, Any]]:
    """Everything checked before any storage is touched: settings, budget, space."""
    for parameter, value, least in (
        ("trials", trials, 1),
        ("epochs", epochs, 1),
        ("seeds", seeds, 1),
        ("multiple", multiple, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ArgumentError(parameter, f"a whole number of at least {least}", value)
    for parameter, maybe in (("subset", subset), ("final_epochs", final_epochs), ("front_size", front_size)):
        if maybe is not None and (not isinstance(maybe, int) or maybe < 1):
            raise ArgumentError(parameter, "a positive whole number", maybe)
    if sampler not in SAMPLERS:
        raise ArgumentError("sampler", "one of " + ", ".join(SAMPLERS), sampler)
    budget_macs, budget_params = (
        None if v is None else _count(p, v) for p, v in (("macs", macs), ("params", params))
    )
    if budget_macs is None and budget_params is None and latency_ms is None:
        raise ArgumentError(
            "macs", "a MACs budget, a params budget or both", hint="neither macs nor params was given"
        )
    if latency_ms is not None and (latency is None or not latency_ms > 0):
        raise ArgumentError("latency_ms", "a positive budget, with a latency model", latency_ms)
    if isinstance(spec, Plan):
        model, planned = copy.deepcopy(spec.model), spec
    else:
        planned = load(spec, budget=budget) if not isinstance(spec, ModelSpec) else plan(spec)
        model = copy.deepcopy(planned.model)
    planned = plan(model)  # the copy's own plan: knobs point into `model`
    knobs = space(model, planned, blocks, widths, multiple, budget)
    setup = _Setup(model, planned, knobs, budget_macs, budget_params, latency, latency_ms)
    narrow = analyse(cost(model, knobs, {k.name: k.choices[0] for k in knobs})).total
    for parameter, limit, least in (
        ("macs", budget_macs, narrow.macs),
        ("params", budget_params, narrow.params),
    ):
        if limit is not None and least > limit:
            raise ArgumentError(
                parameter,
                f"at least {least:,} {parameter.replace('macs', 'MACs')}: the smallest reachable, with every "
                f"searched width at its narrowest ({len(knobs)} widths, multiples of {multiple})",
                f"{limit:,}",
                raw=True,
            )
    settings = {
        "spec_sha256": hashlib.sha256(model.to_yaml().encode()).hexdigest(),
        "model": model.name,
        "budget": {"macs": budget_macs, "params": budget_params, "latency_ms": latency_ms},
        "space": {k.name: [*k.choices, k.step] for k in knobs},
        "epochs": epochs,
        "subset": subset,
        "data": data,
        "seed": seed,
    }
    return setup, settings


def _count(parameter: str, value: Any) -> int:
    try:
        return parse_count(value)
    except (ValueError, TypeError) as err:
        raise ArgumentError(parameter, "a positive count such as 1.2G, 5M, 800K or 12000", value) from err


def _claim_folder(out: Path, settings: dict[str, Any]) -> None:
    """`out` is new, empty, or a search's own (its marker file): never someone else's folder."""
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise UnsafeDestination(out, "it is not a folder")
    if out.is_dir() and any(out.iterdir()) and not marker.is_file():
        raise UnsafeDestination(out, f"it holds files and no {MARKER}: not a search's output folder")
    if marker.is_file():
        return  # a resume: the study's own settings are checked against these
    try:
        out.mkdir(parents=True, exist_ok=True)
        with staged_file(marker) as tmp:
            tmp.write_text(
                json.dumps({"inception_kit": "search", **settings}, indent=1) + "\n", encoding="utf-8"
            )
    except OSError as err:
        raise _disk_error(out, err) from None


def _disk_error(out: Path, err: OSError) -> ArgumentError:
    what = "full" if err.errno == errno.ENOSPC else err.strerror or str(err)
    return ArgumentError(
        "out",
        "a folder with room for the results, writable",
        f"{out} ({what})",
        hint="nothing was written",
        raw=True,
    )


def _check_settings(st: Any, settings: dict[str, Any], name: str) -> None:
    """A study keeps the settings it was made with; joining or resuming with others is refused."""
    have = st.user_attrs.get("settings")
    if have is None:
        st.set_user_attr("settings", settings)
        return
    for key, value in settings.items():
        if json.loads(json.dumps(have.get(key))) != json.loads(json.dumps(value)):
            raise ArgumentError(
                "study",
                f"a study made with the same {key} (or another study name)",
                f"{name!r} made with other {key}",
                hint="pass study=NAME (on the command line, --study) for a new search, or the original settings to continue",
            )


def _live(t: Any) -> bool:
    """A trial that counts toward `trials`: complete within budget, running, or waiting."""
    if t.state.name not in ALIVE:
        return False
    return not t.user_attrs.get("over_budget", False)


def _run_trials(
    st: Any,
    setup: _Setup,
    trainer: Trainer,
    trials: int,
    epochs: int,
    subset: int | None,
    seed: int,
    progress: Progress,
    heartbeat: int,
) -> None:
    """One `study.optimize(n_trials=1)` at a time (it keeps the trial's heartbeat and fails
    stale trials first) until `trials` live trials are complete (the module doc's counting rule)."""
    import optuna
    from optuna.trial import TrialState

    over = 0

    def objective(trial: Any) -> list[float]:
        nonlocal over
        widths = {k.name: trial.suggest_int(k.name, *k.choices, step=k.step) for k in setup.knobs}
        p = cost(setup.model, setup.knobs, widths)
        c = analyse(p).total
        lat = setup.latency(p) if setup.latency is not None else None
        trial.set_user_attr("macs", c.macs)
        trial.set_user_attr("params", c.params)
        if lat is not None:
            trial.set_user_attr("latency_ms", lat)
        constraint = setup.constraint(c.macs, c.params, lat)
        for key, value in constraint.items():
            trial.set_constraint(key, value)
        values = [0.0, float(c.macs)] + ([float(lat)] if lat is not None else [])
        if any(v > 0 for v in constraint.values()):  # over budget: recorded, never trained
            trial.set_user_attr("over_budget", True)
            over += 1
            return values
        over = 0
        ahead = [t for t in st.get_trials(deepcopy=False) if t.number < trial.number and _live(t)]
        if len(ahead) >= trials:  # the quota is taken by earlier trials
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned()
        same = next(
            (
                t
                for t in st.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.user_attrs.get("trained") and t.params == widths
            ),
            None,
        )
        if same is not None:  # evaluated already: its accuracy, no second training
            trial.set_user_attr("same_as", same.number)
            acc = float(same.values[0])
        else:
            progress(len(ahead), trials, f"trials: training trial {trial.number} ({human(c.macs)} MACs)")
            acc = float(trainer(p, epochs=epochs, seed=seed, subset=subset, final=False))
            trial.set_user_attr("trained", True)
        trial.set_user_attr("accuracy", acc)
        values[0] = acc
        return values

    while True:
        optuna.storages.fail_stale_trials(st)  # a dead worker's trial: failed, and re-queued
        all_ = st.get_trials(deepcopy=False)
        done = [t for t in all_ if t.state == TrialState.COMPLETE and not t.user_attrs.get("over_budget")]
        running = [t for t in all_ if t.state == TrialState.RUNNING]
        waiting = [t for t in all_ if t.state == TrialState.WAITING]
        progress(
            min(len(done), trials), trials, f"trials: {len(done)} of {trials} done, {len(running)} running"
        )
        if len(done) >= trials:
            return
        if len(done) + len(running) >= trials and not waiting:
            time.sleep(
                min(heartbeat, 2.0)
            )  # the rest are running elsewhere: wait for them (or for them to die)
            continue
        st.optimize(objective, n_trials=1, catch=(), gc_after_trial=False)
        if over > OVER_BUDGET_LIMIT * trials:
            raise SearchFailed(
                f"the sampler proposed {over} candidates over budget in a row; the budget leaves "
                "too few designs (loosen it, or search more blocks)"
            )


def _records(st: Any) -> list[TrialRecord]:
    out = []
    for t in st.get_trials(deepcopy=False):
        a = t.user_attrs
        note = (
            "over budget"
            if a.get("over_budget")
            else "surplus"
            if a.get("surplus")
            else f"same as trial {a['same_as']}"
            if "same_as" in a
            else ""
        )
        if "failed_trial" in t.system_attrs:
            note = (note + "; " if note else "") + f"retry of trial {t.system_attrs['failed_trial']}"
        out.append(
            TrialRecord(
                t.number,
                t.state.name,
                a.get("macs"),
                a.get("params"),
                a.get("accuracy") if t.state.name == "COMPLETE" else None,
                bool(a.get("trained")) and t.state.name == "COMPLETE",
                a.get("latency_ms"),
                {k: int(v) for k, v in t.params.items()},
                bool(a.get("over_budget")),
                note,
            )
        )
    return out


def _final(
    st: Any,
    setup: _Setup,
    trainer: Trainer,
    seeds: int,
    front_size: int | None,
    epochs: int,
    seed: int,
    progress: Progress,
) -> list[FrontPoint]:
    """The Pareto front of the search (Optuna's, feasible trials only), one design per set of
    widths, each trained with `seeds` seeds (kept in the study: a resume continues)."""
    best = sorted(st.best_trials, key=lambda t: t.user_attrs["macs"])
    seen: set[tuple[tuple[str, int], ...]] = set()
    chosen = []
    for t in best:
        key = tuple(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            chosen.append(t)
    if (
        front_size is not None and len(chosen) > front_size
    ):  # by MACs the front's accuracy rises: keep both ends
        n = len(chosen)
        picks = (
            [n - 1]
            if front_size == 1
            else sorted({round(i * (n - 1) / (front_size - 1)) for i in range(front_size)})
        )
        chosen = [chosen[i] for i in picks]
    front = []
    jobs = len(chosen) * seeds
    done = 0
    for t in chosen:
        widths = {k: int(v) for k, v in t.params.items()}
        p = cost(setup.model, setup.knobs, widths)
        accs = []
        for s in range(seeds):
            attr = f"final:{t.number}:{seed + s}"
            have = st.user_attrs.get(attr)
            if have is None:
                progress(done, jobs, f"front: trial {t.number}, seed {seed + s}")
                have = float(trainer(p, epochs=epochs, seed=seed + s, subset=None, final=True))
                st.set_user_attr(attr, have)
            accs.append(float(have))
            done += 1
        a = t.user_attrs
        name = f"{setup.model.name}_t{t.number}"
        header = (
            f"# Found by inception-kit search (study {st.study_name}, trial {t.number}; budget"
            f" {_words(setup)}): {len(setup.knobs)} widths searched.\n"
            f"# MACs {a['macs']:,} (was {analyse(setup.planned).total.macs:,}); params {a['params']:,}"
            f" (was {analyse(setup.planned).total.params:,}); accuracy {statistics.fmean(accs):.4f}"
            f" (mean of {len(accs)} seeds).\n"
        )
        text = spec_text(setup.model, setup.knobs, widths, header)
        front.append(
            FrontPoint(
                t.number,
                a["macs"],
                a["params"],
                widths,
                float(t.values[0]),
                accs,
                f"front/{name}.yaml",
                text,
                a.get("latency_ms"),
            )
        )
    progress(jobs, jobs, "front: done")
    return front


def _words(setup: _Setup) -> str:
    words = []
    if setup.macs is not None:
        words.append(f"at most {human(setup.macs)} MACs")
    if setup.params is not None:
        words.append(f"at most {human(setup.params)} params")
    if setup.latency_ms is not None:
        words.append(f"at most {setup.latency_ms:g} ms")
    return " and ".join(words)


# ------------------------------------------------------------------------------- output


def _write(result: SearchResult, setup: _Setup, out: Path) -> None:
    """front.json, front.png and front/ together: every file is staged complete beside its
    destination before any is moved in, so a failure (a full disk) leaves the old ones."""
    try:
        with contextlib.ExitStack() as stack:
            folder = stack.enter_context(staged_dir(out / "front", overwrite=True, marker=MARKER_FRONT))
            for p in result.front:
                (folder / Path(p.spec).name).write_text(p.text, encoding="utf-8")
            (folder / MARKER_FRONT).write_text("written by inception-kit search\n", encoding="utf-8")
            png = stack.enter_context(staged_file(out / "front.png", overwrite=True))
            _chart(result, setup, png)
            js = stack.enter_context(staged_file(out / "front.json", overwrite=True))
            js.write_text(json.dumps(result.as_json(), indent=1) + "\n", encoding="utf-8")
    except OSError as err:
        if isinstance(err, UnsafeDestination):
            raise
        raise _disk_error(out, err) from None


MARKER_FRONT = ".search-front"


def _chart(result: SearchResult, setup: _Setup, path: Path) -> None:
    """Accuracy against MACs: every trained trial, the front (its final accuracy, ± sd), the budget."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    tried = [t for t in result.trials if t.trained and t.accuracy is not None]
    ax.scatter(
        [float(t.macs or 0) for t in tried],
        [float(t.accuracy or 0.0) for t in tried],
        color="#b8b8b8",
        label="trials (search training)",
    )
    if result.front:
        ax.errorbar(
            [p.macs for p in result.front],
            [p.accuracy for p in result.front],
            yerr=[p.sd for p in result.front],
            color="#2f6db5",
            marker="o",
            capsize=3,
            label=f"front (mean of {result.seeds} seeds)",
        )
    if setup.macs is not None:
        ax.axvline(setup.macs, color="#c0392b", linestyle="--", label=f"budget {human(setup.macs)} MACs")
    ax.axvline(result.original["macs"], color="#555555", linestyle=":", label="the original")
    ax.set_xlabel("MACs (multiply-adds)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{result.study}: accuracy against MACs ({len(tried)} trials trained)")
    ax.grid(color="#e4e4e4")
    ax.legend(fontsize=8, frameon=False)
    fig.savefig(path, format="png", metadata={"Software": None})
