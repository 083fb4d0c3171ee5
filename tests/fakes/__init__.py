"""Local fakes of the outside services tickscan talks to (and of a clock), for the tests and
benchmarks."""
