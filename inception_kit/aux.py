"""Auxiliary heads: side classifiers on inner layers, used in training only (GoogLeNet's two).

A spec's `aux:` section attaches each head, by name, to the output of a top-level layer or
block (`at`). Each head is planned as a one-branch block named after it, so its layers are
named `aux1_head_conv1x1`, ... and its costs are counted like any block's, apart from the
model's totals: the report shows them as training-only cost. Plain Python: no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cost import Analysis, analyse
from .errors import SpecError, did_you_mean
from .shapes import BlockPlan, Plan, plan
from .spec import Block, Model

BRANCH = "head"


@dataclass
class AuxPlan:
    name: str
    at: str
    weight: float
    block: BlockPlan  # one branch, BRANCH, holding the head's layers

    @property
    def steps(self) -> list:
        return self.block.branches[BRANCH]


def plan_aux(p: Plan) -> dict[str, AuxPlan]:
    """Plans every auxiliary head of a planned model. Raises SpecError with every problem."""
    model = p.model
    taps = {step.name: step for step in p.layers}
    problems = []
    out: dict[str, AuxPlan] = {}
    for name, head in model.aux.items():
        mark = head.origins.get("at")
        if head.at not in taps:
            problems.append(
                SpecError.one(
                    f"aux.{name}.at",
                    "the name of a top-level layer or block",
                    repr(head.at),
                    mark,
                    did_you_mean(head.at, taps) or None,
                ).problems[0]
            )
            continue
        block = Block(name, {BRANCH: list(head.layers)})
        block.origins = {"": (head.origins.get("layers"), None)}
        try:
            sub = plan(
                Model(f"{model.name}_{name}", taps[head.at].output_shape, [block], defaults=model.defaults)
            )
        except SpecError as err:
            problems.extend(err.problems)
            continue
        out[name] = AuxPlan(name, head.at, head.weight, sub.layers[0])  # type: ignore[arg-type]
    if problems:
        raise SpecError(problems)
    return out


def aux_analyses(p: Plan) -> dict[str, Analysis]:
    """Each auxiliary head's costs, on its own (not in the model's totals)."""
    return {
        name: analyse(
            Plan(
                Model(f"{p.model.name}_{name}", a.block.input_shape, []), [a.block], [], a.block.output_shape
            )
        )
        for name, a in plan_aux(p).items()
    }
