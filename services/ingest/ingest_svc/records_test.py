"""Bounded rejections: `elide` keeps reasons short and says what it cut; `listed` caps a reply."""

import pytest

from ingest_svc._model import MAX_REASON_CHARS, Rejection, elide
from ingest_svc._records import listed


@pytest.mark.parametrize(
    "text",
    [
        "cell parameter a '" + "9" * 100_000 + "' is not a number",
        "x" * 1_000_000,
        " ".join(["w" * 70] * 50),  # many long words: elided one by one, then cut at the end
        "short words only " * 100,
        "\u00e9" * 5000,
    ],
)
def test_elide_keeps_text_within_the_limit_and_states_the_length(text):
    short = elide(text, MAX_REASON_CHARS)
    assert len(short) <= MAX_REASON_CHARS
    assert short[:10] == text[:10] and "chars]" in short


def test_elide_keeps_the_sentence_around_a_long_value():
    value = "'5.64" + "x" * 10_000 + "'"
    short = elide(f"cell parameter a {value} is not a number", MAX_REASON_CHARS)
    assert (
        short
        == "cell parameter a '5.64xxxxxxxxxxxxxxxxxxx...[10006 chars]...xxxxxxx' is not a number"
    )


def test_short_text_is_unchanged():
    assert (
        elide("cell parameter a 'abc' is not a number", 40)
        == "cell parameter a 'abc' is not a number"
    )


def test_listed_stops_at_the_count_and_at_the_byte_budget():
    rejections = [Rejection.bounded(f"f.cif#{i}", "cif_parse", "m" * 10_000) for i in range(100)]
    assert all(len(r.message) <= MAX_REASON_CHARS for r in rejections)
    assert len(listed(rejections, 10, 1 << 20)) == 10
    shown = listed(rejections, 1000, 4000)
    assert 0 < len(shown) < 100 and shown == tuple(rejections[: len(shown)])
    assert sum(len(r.message) for r in shown) <= 4000
