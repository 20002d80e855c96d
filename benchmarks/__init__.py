"""Input-pipeline benchmarks (``make bench`` runs ``benchmarks/run_all.py``)."""
