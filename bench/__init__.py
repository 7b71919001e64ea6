"""``make bench``: how fast, how lean and how quick to recover the bridge is (issue #8).

Not part of ``make test``. ``python -m bench --help`` lists the options; BENCHMARKS.md holds the
numbers measured on the project's machine and what they mean.
"""
