"""The tickscan command line: the one place that composes flows (and the API) into a process."""
