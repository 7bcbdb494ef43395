"""Latency: a measured model of this machine's kernel times, in every report beside MACs.

`calibrate` (the CLI's `inception-kit calibrate`) samples the kernels the planner emits,
times them with a runtime (TensorFlow or ONNX Runtime) and fits one regressor per layer
kind into a JSON profile; `predict_latency(plan, profile)` adds the kernels of a plan and of
its naive counterpart up in plain Python. Modules: `kernels` (what is sampled, features),
`regressor` (fit with scikit-learn, predict by hand), `profile` (the file: bounded, checked,
valid for one machine), `predict`, `calibrate`, `timers` (TensorFlow, ONNX Runtime).
"""

from __future__ import annotations

from .kernels import SAMPLERS, Sample, Seed, register_sampler
from .predict import Latency, LatencyPrediction, predict_latency
from .profile import Profile, ProfileError, load_profile

__all__ = [
    "SAMPLERS",
    "Latency",
    "LatencyPrediction",
    "Profile",
    "ProfileError",
    "Sample",
    "Seed",
    "load_profile",
    "predict_latency",
    "register_sampler",
]
