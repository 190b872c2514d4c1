"""Domain errors a servicer raises; the server maps each to a gRPC status with its message.

Raise these, or register your own exception types in `build_server(error_map=...)` with a
`grpc.StatusCode` or its name (e.g. `storage.GRPC_STATUS`). Anything else is unexpected and
reaches the client as INTERNAL with a short message and an error id, the traceback going only to
the server log.
"""

from collections.abc import Mapping

import grpc


class ServiceError(Exception):
    """Base of the mapped errors; the message is sent to the client as the status details."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN


class InvalidInput(ServiceError):
    """The request is malformed or invalid (INVALID_ARGUMENT); say what and why."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class TooLarge(ServiceError):
    """The request exceeds a size or rate limit (RESOURCE_EXHAUSTED)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotFound(ServiceError):
    """A named dataset, commit, checkpoint... does not exist (NOT_FOUND)."""

    code = grpc.StatusCode.NOT_FOUND


class Conflict(ServiceError):
    """A concurrent change won (ABORTED): the client may retry the whole operation."""

    code = grpc.StatusCode.ABORTED


class FailedPrecondition(ServiceError):
    """The system is not in a state to do this (FAILED_PRECONDITION): retrying will not help."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class DeadlineExceeded(ServiceError):
    """Not enough time is left before the client's deadline (DEADLINE_EXCEEDED)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(ServiceError):
    """The call carries no valid credentials (UNAUTHENTICATED); the reason names no secret."""

    code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(ServiceError):
    """A dependency is down or the server is shutting down (UNAVAILABLE): retry later."""

    code = grpc.StatusCode.UNAVAILABLE


ErrorMap = Mapping[type[BaseException], grpc.StatusCode | str]  # a code or its name


def resolve_error_map(error_map: ErrorMap | None) -> dict[type[BaseException], grpc.StatusCode]:
    """`error_map` with status names ('NOT_FOUND') turned into codes; ValueError names an
    unknown status, so a typo fails when the server is built, not when the error happens."""
    resolved = {}
    for cls, code in (error_map or {}).items():
        if isinstance(code, str):
            if code not in grpc.StatusCode.__members__:
                raise ValueError(f"{cls.__name__} maps to {code!r}, which is not a gRPC status")
            code = grpc.StatusCode[code]
        resolved[cls] = code
    return resolved


def status_for(
    exc: BaseException, error_map: Mapping[type[BaseException], grpc.StatusCode]
) -> grpc.StatusCode | None:
    """The status for `exc`: the nearest class in its MRO found in `error_map`, else its
    ServiceError code, else None (unexpected)."""
    for cls in type(exc).__mro__:
        if cls in error_map:
            return error_map[cls]
    if isinstance(exc, ServiceError):
        return exc.code
    return None
