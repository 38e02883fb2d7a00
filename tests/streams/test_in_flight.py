"""The streams worker's batch in flight, awaited by its loop and by a revoke at once."""

from __future__ import annotations

import asyncio

import pytest

from govpulse.streams.app import InFlight


def test_a_batch_cancelled_by_the_revokes_timeout_does_not_stop_the_loop_waiting_on_it():
    async def scenario() -> bool:
        in_flight = InFlight()
        in_flight.start(asyncio.sleep(10))  # acks that never come in time
        loop_wait = asyncio.ensure_future(in_flight.drain())  # the loop: no timeout
        await asyncio.sleep(0)
        await in_flight.drain(timeout=0.05)  # the revoke handler gives up and cancels it
        await asyncio.wait_for(loop_wait, 1)  # returns; a CancelledError here ended the loop
        return in_flight._task is None

    assert asyncio.run(scenario())


def test_a_failed_batch_is_raised_to_whoever_waits():
    async def failing() -> None:
        raise RuntimeError("DeliveryFailed")

    async def scenario() -> None:
        in_flight = InFlight()
        in_flight.start(failing())
        await in_flight.drain()

    with pytest.raises(RuntimeError, match="DeliveryFailed"):
        asyncio.run(scenario())
