"""The parts of bench/soak_ingest.py: its two child processes, memory probes and report."""
