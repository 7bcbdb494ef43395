"""The spec stage: spec objects, YAML reading, parsing, presets, knobs and the JSON Schema.

Plain Python: nothing here plans, costs or imports Keras.
"""

from .parse import parse, parse_plain, parse_text
from .types import AuxHead, Block, BlockSpec, Layer, LayerSpec, Model, ModelSpec, Node

__all__ = [
    "AuxHead",
    "Block",
    "BlockSpec",
    "Layer",
    "LayerSpec",
    "Model",
    "ModelSpec",
    "Node",
    "parse",
    "parse_plain",
    "parse_text",
]
