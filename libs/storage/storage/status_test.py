"""The storage errors' gRPC statuses: every specific error has one, and each is a real status."""

import inspect

import grpc

import storage
from storage import GRPC_STATUS, StorageError


def test_every_specific_storage_error_has_a_grpc_status():
    errors = {
        obj
        for obj in vars(storage).values()
        if inspect.isclass(obj) and issubclass(obj, StorageError) and obj is not StorageError
    }
    assert errors and errors == set(GRPC_STATUS)
    assert StorageError not in GRPC_STATUS  # unclassified failures stay INTERNAL
    assert set(GRPC_STATUS.values()) <= set(grpc.StatusCode.__members__)


def test_missing_things_are_not_found_and_lost_races_are_aborted():
    assert GRPC_STATUS[storage.ObjectNotFound] == "NOT_FOUND"
    assert GRPC_STATUS[storage.RefNotFound] == "NOT_FOUND"
    assert GRPC_STATUS[storage.HeadMoved] == GRPC_STATUS[storage.PreconditionFailed] == "ABORTED"
