"""Bounded gunzip of whole files (the ingest client's path for .gz uploads)."""

import gzip
import zlib

import pytest
from xtal import CrystalError

from autoperi_data import gunzip_bounded
from autoperi_data._streams import gzip_limit


def test_every_member_is_decompressed():
    text = b"data_a\n" * 1000
    assert gunzip_bounded(gzip.compress(text) + gzip.compress(text), "x.gz") == text + text


def test_a_bomb_is_refused_at_the_bound():
    data = gzip.compress(b"\0" * (gzip_limit(0) + 1), compresslevel=9)
    assert len(data) * 100 < gzip_limit(0)  # the floor, not the ratio, bounds this file
    with pytest.raises(CrystalError, match="gzip bomb") as refused:
        gunzip_bounded(data, "bomb.gz")
    assert refused.value.code == "too_large"


def test_corrupt_or_cut_data_is_an_error_the_caller_can_tell():
    data = gzip.compress(b"data_a\n" * 1000)
    with pytest.raises(EOFError):
        gunzip_bounded(data[: len(data) // 2], "cut.gz")
    with pytest.raises(zlib.error):
        gunzip_bounded(data[:10] + b"\xff" * 50, "corrupt.gz")
