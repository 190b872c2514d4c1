"""Featuriser configs from requests: validated, canonicalised and hashed; dataset naming.

A request names data only by dataset name and ref, and its featuriser by name and parameters
(no parameter is a location: features go to the service's object store under content keys).
Messages repeat a client's value only when it is not path-like (`svc_kit.shown_value`).
"""

import json
from dataclasses import asdict, dataclass, fields

import autoperi_data as layout
from featurize import FeaturizerConfig
from storage import InvalidKey, check_ref_name
from svc_kit import WITHHELD, InvalidInput, is_path_like, public_text, shown_value

FEATURIZERS = ("periodic",)  # names this service builds (the featurize library's featuriser)


@dataclass(frozen=True)
class ResolvedConfig:
    """A featuriser config as the server understood it."""

    name: str
    config: FeaturizerConfig
    canonical_json: str
    config_hash: str


def resolve_config(name: str, params_json: str) -> ResolvedConfig:
    """Parse `params_json` into the featuriser's config (defaults filled in); unknown keys or
    bad values are InvalidInput. An empty name means "periodic"."""
    name = name or FEATURIZERS[0]
    if name not in FEATURIZERS:
        known = ", ".join(FEATURIZERS)
        raise InvalidInput(f"unknown featuriser {shown_value(name)}; known: {known}")
    try:
        params = json.loads(params_json or "{}")
    except ValueError as exc:
        raise InvalidInput(f"params_json is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise InvalidInput("params_json must be a JSON object")
    unknown = sorted(set(params) - {f.name for f in fields(FeaturizerConfig)})
    if unknown:
        shown = ", ".join(n if not is_path_like(n) else WITHHELD for n in unknown)
        raise InvalidInput(f"unknown featuriser parameter(s): {shown}")
    try:
        config = FeaturizerConfig(**_typed(params))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"invalid featuriser parameters: {public_text(str(exc))}") from None
    canonical = json.dumps(asdict(config), sort_keys=True, separators=(",", ":"))
    return ResolvedConfig(name, config, canonical, config.config_hash())


def _typed(params: dict) -> dict:
    """Parameters with JSON numbers coerced to the config's types (5 and 5.0 are one cutoff)."""
    out = dict(params)
    for name, kind in (("cutoff", float), ("max_neighbors", int), ("shard_size", int)):
        value = out.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or kind(value) != value:
            raise InvalidInput(
                f"featuriser parameter {name} must be a {kind.__name__}, got {shown_value(value)}"
            )
        out[name] = kind(value)
    if not isinstance(out.get("canonical", True), bool):
        raise InvalidInput("featuriser parameter canonical must be true or false")
    return out


def repo_name(dataset: str) -> str:
    """The storage repository of a dataset (the dataset contract's rule); InvalidInput if the
    name is invalid, repeating it only when it is not path-like."""
    try:
        return layout.repo_name(dataset)
    except ValueError:
        raise InvalidInput(
            f"invalid dataset name {shown_value(dataset)}: use 3-63 lower-case letters, digits,"
            " '_' or '-' (no '--'), starting with a letter or digit; paths and URIs are not"
            " accepted"
        ) from None


def check_ref(ref: str) -> str:
    """`ref` if it is '' (the default branch), a branch or tag name or a commit id; else
    InvalidInput, repeating it only when it is not path-like."""
    try:
        return check_ref_name(ref) if ref else ref
    except InvalidKey:
        raise InvalidInput(
            f"ref {shown_value(ref)} is not a branch, tag or commit id (1-128 letters, digits,"
            " '_' or '-'; paths and URIs are not accepted)"
        ) from None
