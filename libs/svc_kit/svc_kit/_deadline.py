"""Deadline helpers for servicers: fail fast when the client's deadline cannot be met."""

import grpc

from svc_kit._errors import DeadlineExceeded


def time_remaining(context: grpc.aio.ServicerContext) -> float | None:
    """Seconds left before the client's deadline (None when the client set none)."""
    remaining = context.time_remaining()
    return None if remaining is None else max(0.0, float(remaining))


def check_deadline(
    context: grpc.aio.ServicerContext, min_remaining_s: float = 0.0, what: str = "the request"
) -> float | None:
    """Raise DeadlineExceeded (-> DEADLINE_EXCEEDED) unless more than `min_remaining_s` seconds
    remain; return the seconds remaining (None without a deadline). Call it before and between
    expensive steps so work that cannot finish in time is not started."""
    remaining = time_remaining(context)
    if remaining is not None and remaining <= min_remaining_s:
        raise DeadlineExceeded(
            f"{remaining:.3f}s left before the deadline, {what} needs at least {min_remaining_s}s"
        )
    return remaining
