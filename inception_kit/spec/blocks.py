"""Blocks taken out of a spec, to use as building blocks of your own Keras models.

`Model.block(name)` returns the named block with the spec's resolved `defaults` written into
its layers, so that `apply_block` builds exactly what the spec's report counts. Plain Python.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from ..errors import SpecError, did_you_mean
from .types import BlockSpec, LayerSpec, ModelSpec, Node


def iter_blocks(nodes: list[Node]) -> Iterator[BlockSpec]:
    """Every block, outer before inner, in spec order."""
    for node in nodes:
        if isinstance(node, BlockSpec):
            yield node
            for branch in node.branches.values():
                yield from iter_blocks(branch)


def find_block(model: ModelSpec, name: str) -> BlockSpec:
    """A copy of the first block named `name`, carrying the model's defaults.

    Raises:
        SpecError: no block has that name (with a did-you-mean).
    """
    blocks = list(iter_blocks([*model.layers, *model.head]))
    for block in blocks:
        if block.name == name:
            found: BlockSpec = with_defaults(block, model.defaults)
            return found
    names = [b.name for b in blocks if b.name]
    hint = did_you_mean(name, names) or (
        "blocks: " + ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    )
    raise SpecError.one(
        "block", f"the name of a block in model '{model.name}'", repr(name), hint=hint if names else None
    )


def with_defaults(node: Node, defaults: dict[str, dict[str, Any]]) -> Any:
    """A copy of a node whose layers hold the defaults for their kind (their own values win)."""
    if isinstance(node, LayerSpec):
        layer = copy.copy(node)
        layer.args = {**copy.deepcopy(defaults.get(node.kind, {})), **node.args}
        return layer
    block = copy.copy(node)
    block.branches = {b: [with_defaults(n, defaults) for n in nodes] for b, nodes in node.branches.items()}
    return block
