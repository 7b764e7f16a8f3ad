"""Named tolerances of the evaluation tests that tests.helpers does not have."""

# harmonic_fill's default solve: float32 multigrid-preconditioned CG to a relative residual of
# 1e-6; against the exact solution that leaves ~1e-5 of the value range on small grids.
FLOAT32_AMG = dict(rtol=1e-4, atol=1e-4)
