"""What users hand-write without a library: a model filled by the ``stripe`` SDK's auto-paging
list and ``update_or_create`` per customer (the baseline row of ``benchmarks/pull.py``).

No migrations: the benchmark creates its table with ``migrate --run-syncdb``.
"""
