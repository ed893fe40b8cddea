"""`sandboxes.candidate_text`, the one gate for candidate text: what a terminal would obey is gone, each use
has its cap, a long text keeps its head and tail, and the gate can be passed again without change."""

from __future__ import annotations

import pytest

from sandboxes import TEXT_CAPS, candidate_text


@pytest.mark.parametrize("hostile, shown", [
    ("\x1b[2J\x1b[HVALID", "VALID"),                      # clear the screen, home the cursor
    ("\x1b[1;32mok\x1b[0m", "ok"),                          # colours
    ("\x1b]0;title\x07after", "after"),                     # OSC: the window's title, ended by BEL
    ("\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ended by ST
    ("\x1bcreset", "reset"),                                # ESC c: reset the terminal
    ("\x9b2Jeight-bit", "eight-bit"),                       # 8-bit CSI
    ("\x1bPdevice\x1b\\control", "control"),                # DCS
    ("INVALID\rVALID  ", "INVALID\nVALID  "),               # a carriage return cannot overwrite a line
    ("a\r\nb", "a\nb"),
    ("nul\x00bell\x07back\x08del\x7f", "nulbellbackdel"),
    ("\u202eevil\u202c \u2066isolate\u2069", "evil isolate"),  # bidirectional overrides and isolates
    ("lone \ud800 surrogate", "lone ? surrogate"),
    ("tabs\tand\nnewlines stay", "tabs\tand\nnewlines stay"),
    # HTML: escaped where built, not here
    ("<script>alert(1)</script> & \u00e9\u4e2d", "<script>alert(1)</script> & \u00e9\u4e2d"),
    ("\x1b[", ""), ("\x1b", ""), ("\x1b]unterminated", ""),
])
def test_what_a_terminal_would_obey_is_gone(hostile, shown):
    for use in TEXT_CAPS:
        assert candidate_text(hostile, use) == shown


def test_each_use_has_its_cap_and_a_long_text_keeps_its_head_and_tail():
    text = "HEAD" + "x" * 3_900_000 + "TAIL"
    for use, cap in TEXT_CAPS.items():
        gated = candidate_text(text, use)
        assert len(gated) == cap and gated.startswith("HEAD") and gated.endswith("TAIL")
        assert f"[... cut: {len(text)} characters in all ...]" in gated
    assert len(candidate_text(text, "prompt", limit=300)) == 300
    assert len(candidate_text(text, "terminal", limit=10**9)) == TEXT_CAPS["terminal"]  # a limit only lowers
    assert candidate_text(text, "web", limit=0) == "" and candidate_text("abcdef", "web", limit=3) == "abc"
    assert "\n" not in candidate_text("one line " * 100_000, "terminal")  # a one-line text stays one line
    assert "\n[... cut: " in candidate_text("two\nlines " * 100_000, "terminal")
    short = "a" * TEXT_CAPS["terminal"]
    assert candidate_text(short, "terminal") == short


def test_the_gate_can_be_passed_again_without_change():
    for text in ("\x1b[31m" * 50_000 + "y" * 50_000, "\x1b]" + "z" * 100_000, "q\x1b" * 40_000, "ok"):
        for use in TEXT_CAPS:
            once = candidate_text(text, use)
            assert candidate_text(once, use) == once


def test_escapes_split_by_the_cut_leave_nothing_active():
    text = "\x1b[2J" * 1_000_000 + "\x1b]0;" + "t" * 1_000_000  # megabytes of sequences, cut through the middle
    for use in TEXT_CAPS:
        assert "\x1b" not in candidate_text(text, use)


def test_anything_is_text_and_a_wrong_use_is_one_line():
    assert candidate_text(ValueError("\x1b[2Jboom"), "terminal") == "boom"
    assert candidate_text(None, "web") == "None"
    with pytest.raises(ValueError, match="use='screen': candidate text is gated for one of result, database"):
        candidate_text("x", "screen")
