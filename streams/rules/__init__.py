"""Pure cleaning, validation and enrichment rules: no Faust, no Kafka, no I/O.

The Faust agents only move records; these functions decide what happens to them, so they
are tested without a broker (property tests) and reused by the benchmarks.
"""
