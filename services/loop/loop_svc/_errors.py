"""How a loop's engine stops early: a stage that cannot finish, or a stop request."""


class LoopFailed(RuntimeError):
    """A stage could not finish (the reason is one sentence; the journal says where)."""


class LoopStopped(Exception):
    """`should_stop` said so before a stage; the journal is left as it was (state running)."""
