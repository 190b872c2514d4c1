"""The gRPC status each storage error means to a client, by status name.

One table for every service that serves storage-backed RPCs: pass it to
`svc_kit.build_server(error_map=...)` (which accepts status names) instead of keeping a copy per
service. Names rather than `grpc.StatusCode` members, so `storage` does not import grpc. The base
`StorageError` is deliberately absent: an unclassified storage failure is the server's problem
(INTERNAL, logged with an error id).
"""

from collections.abc import Mapping

from storage import _errors as errors

GRPC_STATUS: Mapping[type[errors.StorageError], str] = {
    errors.InvalidKey: "INVALID_ARGUMENT",  # a name the client chose is not allowed
    errors.ObjectNotFound: "NOT_FOUND",
    errors.RepositoryNotFound: "NOT_FOUND",
    errors.RefNotFound: "NOT_FOUND",
    errors.RepositoryExists: "ALREADY_EXISTS",
    errors.BranchExists: "ALREADY_EXISTS",
    errors.HeadMoved: "ABORTED",  # optimistic concurrency lost: retry the whole operation
    errors.PreconditionFailed: "ABORTED",
    errors.MergeConflict: "FAILED_PRECONDITION",  # no retry helps until the conflict is resolved
    errors.CorruptObject: "DATA_LOSS",
}
