"""Client helper: score crystals on a running scorer service (used by other services).

`score(address, crystals, options)` sends the crystals (`xtal.Crystal`s or `crystal.v1.Crystal`
messages, which go as they are) in requests of at most `chunk_size` (the server's max_batch_size
is 256 by default) and returns one `Scores` per crystal, in input order; per-crystal failures are
in `Scores.error`, request failures raise `grpc.RpcError` (INVALID_ARGUMENT, with the reason, for
a malformed message). The channel is secured as `security` says (default: the AUTOPERI_TLS_* /
AUTOPERI_AUTH_TOKEN variables, `svc_kit.open_channel`).
"""

from collections.abc import Sequence

from autoperi.crystal.v1 import crystal_pb2
from autoperi.scorer.v1 import scorer_pb2, scorer_pb2_grpc
from svc_kit import ClientSecurity, open_channel
from xtal import Crystal
from xtal.convert import as_proto

from scorer_svc._convert import options_to_proto, scores_from_message
from scorer_svc._model import ScoreOptions, Scores


def score(
    address: str,
    crystals: Sequence[Crystal | crystal_pb2.Crystal],
    options: ScoreOptions | None = None,
    *,
    timeout_s: float | None = 600.0,
    chunk_size: int = 256,
    security: ClientSecurity | None = None,
) -> list[Scores]:
    """Scores of `crystals` from the scorer at `address` ('host:port'); `timeout_s` is the
    deadline of each request. With `options.include_relaxed_crystal`, `Scores.lattice` and
    `Scores.frac_coords` hold the relaxed cell (atom order as the input)."""
    message = options_to_proto(options or ScoreOptions())
    results: list[Scores] = []
    with open_channel(address, security) as channel:
        stub = scorer_pb2_grpc.ScorerServiceStub(channel)
        for start in range(0, len(crystals), chunk_size):
            chunk = [as_proto(c) for c in crystals[start : start + chunk_size]]
            reply = stub.Score(
                scorer_pb2.ScoreRequest(crystals=chunk, options=message), timeout=timeout_s
            )
            for result in reply.results:
                scores = scores_from_message(result)
                scores.index += start
                results.append(scores)
    return results
