"""Process logging: one format for every govpulse process, and quiet libraries."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# aiokafka logs every request at DEBUG (~8 % of a stream worker's time once enabled); httpx
# (and httpx2, what confluent-kafka's registry client logs as) every registry call at INFO.
CHATTY = ("aiokafka", "httpx", "httpx2", "httpcore")


def quiet_chatty_loggers(level: str) -> None:
    """Keep the chatty libraries at WARNING unless GOVPULSE_LOG_LEVEL=DEBUG."""
    if level != "DEBUG":
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: str) -> None:
    """Log to stderr at `level` (GOVPULSE_LOG_LEVEL), libraries quiet."""
    logging.basicConfig(level=level, format=FORMAT)
    quiet_chatty_loggers(level)
