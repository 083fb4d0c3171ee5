"""Local fakes of the outside services tickscan talks to, for integration tests and benchmarks."""
