"""The `govpulse` commands: the top floor, which may import every other and is imported by none.

`govpulse.cli` lists them (`COMMANDS`); each module keeps its heavy imports inside the
command functions, so `govpulse --help` loads neither Kafka, ClickHouse nor Avro code.
"""
