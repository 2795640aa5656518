"""Speed of every variant in both frameworks, as shares of what this machine can do.

``python -m benchmarks.run`` (or ``make bench``) measures images/s, GFLOP/s against a 4096x4096
sgemm, weight bandwidth against a large copy, peak memory, port and parity-check times, all in
one run, and writes a table, JSON and a chart. Imports both frameworks; no model code lives here.
"""
