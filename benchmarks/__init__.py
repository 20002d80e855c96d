"""Benchmarks: ``make bench`` (``run_all.py``: render, loaders, tf.data, shard stage),
``make bench-full`` / ``make bench-raw`` (``bench_data.py``: the data stages at Kaggle's
scale), ``make bench-quality``, ``make bench-levers``, ``make gpu-check``."""
