"""What is trained: a spec or a Keras model, with what training needs to know of it."""

from __future__ import annotations

import math
import os
from typing import Any

from ..errors import ArgumentError, Problem, SpecError
from ..planner import Budget
from .strategy import KerasStrategy


class Target:
    """A spec (validated, costed) or a Keras model, with what training needs to know of it."""

    def __init__(
        self,
        name: str,
        input_shape: tuple[int, ...],
        units: int,
        from_logits: bool,
        identity: str,
        analysis: Any = None,
        keras_model: Any = None,
        where: str = "head",
        mark: Any = None,
    ) -> None:
        self.name, self.input_shape, self.units, self.from_logits = name, input_shape, units, from_logits
        self.identity, self.analysis, self.keras_model = identity, analysis, keras_model
        self.where, self.mark = where, mark

    @classmethod
    def of(cls, spec_or_model: Any, budget: Budget) -> Target:
        from ..planner import Plan
        from ..spec.types import ModelSpec

        if isinstance(spec_or_model, (Plan, ModelSpec, str, os.PathLike)):
            return cls._of_spec(spec_or_model, budget)
        if hasattr(spec_or_model, "fit") and hasattr(spec_or_model, "output_shape"):
            return cls._of_keras(spec_or_model)
        raise ArgumentError(
            "spec_or_model",
            "a spec (a Plan from inception_kit.load, a ModelSpec or a YAML path) or a Keras model",
            type(spec_or_model).__name__,
            raw=True,
        )

    @classmethod
    def _of_spec(cls, spec: Any, budget: Budget) -> Target:
        from ..analysis import analyse
        from ..kinds import kind_of
        from ..loading import load
        from ..planner import Plan, iter_ops

        # A plan was checked against its budget when it was loaded (the CLI's is).
        analysis = analyse(spec if isinstance(spec, Plan) else load(spec, budget=budget))
        p = analysis.plan
        ops = list(iter_ops(p.steps))
        last = ops[-1] if ops else None
        if len(p.output_shape) != 1 or last is None:
            raise SpecError.one(
                "head",
                "a head that ends in one unit per class, e.g. [gap, {dense: {units: K, activation: softmax}}]",
                "an output of shape " + "x".join(map(str, p.output_shape)),
                p.model.origins.get("head", (None, None))[0],
            )
        # Class scores come from a layer with an activation field (dense, activation): logits or softmax.
        scores = "activation" in kind_of(last.kind).fields
        activation = last.args.get("activation") if scores else None
        if not scores or activation not in (None, "linear", "softmax"):
            raise SpecError.one(
                f"{last.path}",
                "a head ending in a dense layer with softmax (probabilities) or no activation "
                "(logits), for sparse categorical cross-entropy",
                f"a {last.kind} layer" + (f" with activation {activation}" if activation else ""),
                last.mark,
            )
        dense = next((op for op in reversed(ops) if "units" in kind_of(op.kind).fields), last)
        return cls(
            p.model.name,
            tuple(p.model.input_shape),
            int(p.output_shape[0]),
            activation != "softmax",
            p.model.to_yaml(),
            analysis=analysis,
            where=f"{dense.path}.units" if "units" in dense.args else dense.path,
            mark=dense.mark,
        )

    @classmethod
    def _of_keras(cls, model: Any) -> Target:
        out = model.output_shape
        if not isinstance(out, tuple) or len(out) != 2 or out[1] is None:
            raise ArgumentError(
                "spec_or_model", "a Keras model with one output of shape (batch, classes)", str(out), raw=True
            )
        act = getattr(model.layers[-1], "activation", None) if model.layers else None
        name = getattr(act, "__name__", None)
        if name not in (None, "linear", "softmax"):
            raise ArgumentError(
                "spec_or_model",
                "a Keras model whose last layer has softmax or no activation (logits)",
                f"activation {name}",
                raw=True,
            )
        inp = tuple(int(d) for d in model.input_shape[1:])
        return cls(
            model.name,
            inp,
            int(out[1]),
            name != "softmax",
            model.to_json(),
            keras_model=model,
            where="the model's output",
        )

    def class_problems(self, source: Any) -> list[Problem]:
        """The head's units against the data's classes."""
        if source.kind == "arrays":
            if source.num_classes > self.units:
                return [
                    Problem(
                        self.where,
                        f"at least {source.num_classes} units, one per label 0..{source.num_classes - 1}",
                        f"{self.units} units",
                        self.mark,
                    )
                ]
            return []
        if source.num_classes != self.units:
            names = ", ".join(source.class_names[:8]) + (", ..." if source.num_classes > 8 else "")
            return [
                Problem(
                    self.where,
                    f"{source.num_classes} units, one per class in {source.describe()} ({names})",
                    f"{self.units} units",
                    self.mark,
                    hint=f"the head has {self.units} outputs but the data has {source.num_classes} classes",
                )
            ]
        return []

    def aux_heads(self, aux: bool, weight: float | None) -> dict[str, tuple[float, bool]]:
        """Auxiliary head -> (loss weight, from_logits), when training with them."""
        if not aux:
            if weight is not None:
                raise ArgumentError("aux_weight", "aux=True (on the command line, --aux) with it", weight)
            return {}
        # NaN is no weight: it passes `< 0` and would make every loss NaN.
        bad = isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < math.inf
        if weight is not None and bad:
            raise ArgumentError("aux_weight", "a loss weight, a finite number from 0", weight)
        if self.analysis is None or not self.analysis.plan.model.aux:
            raise ArgumentError(
                "aux",
                "a spec with auxiliary heads (an aux: section) to train them",
                f"'{self.name}', which has none",
                raw=True,
            )
        heads = {}
        for name, a in self.analysis.plan.aux.items():
            last = a.steps[-1]
            units = last.output_shape[-1]
            if len(last.output_shape) != 1 or units != self.units:
                raise SpecError.one(
                    f"aux.{name}.layers",
                    f"a head ending in {self.units} units, as the model's",
                    f"an output of shape {last.output_shape}",
                    last.mark,
                )
            logits = last.args.get("activation") != "softmax"
            heads[name] = (float(weight if weight is not None else a.weight), logits)
        return heads

    def build(self, strategy: Any, aux: bool = False) -> Any:
        """The model, with its variables in `strategy`'s scope (call inside the scope)."""
        if self.analysis is not None:
            from ..keras.builder import build_model

            return build_model(self.analysis.plan, aux=aux)
        model = self.keras_model
        if isinstance(strategy, KerasStrategy):
            if strategy.distribution is None:
                return model
        elif all(strategy.extended.variable_created_in_scope(v.value) for v in model.weights):
            return model
        import keras

        try:
            clone = keras.models.clone_model(model)
        except Exception as err:  # subclassed models cannot always be cloned
            raise ArgumentError(
                "spec_or_model",
                "a model built inside strategy.scope() of the strategy passed to fit",
                f"{type(model).__name__} made elsewhere, which Keras could not clone ({err})",
                raw=True,
            ) from err
        clone.set_weights(model.get_weights())
        return clone

    def files(self) -> dict[str, str]:
        """The spec's files in the run folder: its cost report and the expanded spec."""
        if self.analysis is None:
            return {}
        from ..report import render

        return {"report.json": render(self.analysis, "json"), "spec.yaml": self.identity}
