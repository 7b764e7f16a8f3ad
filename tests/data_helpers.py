"""Tolerances of the data-layer tests, named like those in tests/helpers.py."""

from __future__ import annotations

# Depth of a ray's first hit: bisection (30 nm) against dense sampling (0.2 um steps), in metres.
RAY_HIT = dict(rtol=0.0, atol=1e-6)
# Sensor noise estimated from ~2000 pixels: the sample std is within 10 % of the true one.
NOISE_STD_ESTIMATE = dict(rtol=0.1, atol=0.0)
