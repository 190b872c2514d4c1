"""`public_text` and `shown_value`: what a client may see of an error or of its own values."""

from svc_kit import WITHHELD, is_path_like, public_text, shown_value


def test_public_text_withholds_host_paths():
    text = (
        "FileNotFoundError: /tmp/autoperi-train-r0-x/init is not a checkpoint, nor"
        " 'file:///srv/store/blobs/ab' or ../../etc/passwd or ~/x\nsecond line /etc/shadow"
    )
    shown = public_text(text)
    assert shown.count("<path>") == 4 and "/tmp" not in shown and "etc" not in shown
    assert public_text("ref loop/2 of s3://bucket/key: 1/2 done") == (
        "ref loop/2 of s3://bucket/key: 1/2 done"
    )
    assert len(public_text("x" * 1000)) == 300
    assert public_text("\n\n") == ""


def test_shown_value_repeats_names_and_withholds_path_like_values():
    assert shown_value("no-such-set") == "'no-such-set'"
    assert shown_value(5.5) == "5.5" and shown_value(["a", 1]) == "['a', 1]"
    for value in ("/etc", "../x", "file:///etc/passwd", "C:\\data", "a/b", ["/etc"], {"k": "/"}):
        assert shown_value(value) == WITHHELD, value
    assert shown_value("x" * 300) == repr("x" * 200 + "...")
    assert is_path_like("s3://bucket") and not is_path_like("main")
