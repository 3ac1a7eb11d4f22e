"""Benchmarks: quicsim against bare aioquic in the same process (python -m bench)."""
