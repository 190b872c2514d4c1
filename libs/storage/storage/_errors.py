"""Errors raised by the storage interfaces; every backend raises these, never its client's own."""


class StorageError(Exception):
    """Base class of every storage failure; the message names the object, ref or repository."""


class InvalidKey(StorageError, ValueError):
    """A key, repository, branch or tag name that the stores do not accept."""


class ObjectNotFound(StorageError, KeyError):
    """The object (or the key inside a tree) does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "object not found"


class PreconditionFailed(StorageError):
    """A conditional write lost: the object's current version is not the expected one."""


class CorruptObject(StorageError):
    """Stored bytes do not hash to the identity they are stored under."""


class RepositoryNotFound(StorageError):
    """The dataset repository does not exist."""


class RepositoryExists(StorageError):
    """A repository with this name already exists."""


class RefNotFound(StorageError):
    """The branch, tag or commit does not exist in the repository."""


class BranchExists(StorageError):
    """A branch (or tag) with this name already exists."""


class HeadMoved(StorageError):
    """The branch head is not the commit the caller expected (optimistic concurrency conflict).

    Attributes: `branch`, `expected` and `actual` commit ids.
    """

    def __init__(self, branch: str, expected: str, actual: str) -> None:
        super().__init__(
            f"branch {branch!r} moved: expected head {expected[:12]}, found {actual[:12]}"
        )
        self.branch = branch
        self.expected = expected
        self.actual = actual


class MergeConflict(StorageError):
    """A three-way merge found keys changed differently on both sides; nothing was written.

    Attributes: `conflicts`, the sorted conflicting keys.
    """

    def __init__(self, source: str, destination: str, conflicts: list[str]) -> None:
        shown = ", ".join(conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
        super().__init__(
            f"merging {source!r} into {destination!r}: {len(conflicts)} conflicting key(s): {shown}"
        )
        self.conflicts = conflicts
