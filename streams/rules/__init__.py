"""Pure rules on single values: no Kafka, no I/O, no knowledge of fields (only of Avro time).

Thai digits, text, Buddhist Era years and timestamps, national IDs, event-id spellings and the
keyed pseudonym. The record transform (`govpulse.streams.transform`: decode → clean → validate
→ pseudonymise → mask → enrich → encode) applies them to the fields its `EventLayout` names;
the batch loop (`govpulse.streams.batch`) and the producer SDK's verdict
(`govpulse.producers.verdict`) run that transform. Tested without a broker (property tests)
and reused by the benchmarks.
"""
