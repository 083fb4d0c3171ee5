"""Live delivery: one consumer of the live topics per process, fanned out to clients."""
