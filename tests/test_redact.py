from formafriend_scheduler.redact import Redactor, one_line


def test_passwords_in_any_url_are_masked() -> None:
    redact = Redactor()
    text = "cannot reach mongodb://app:pa55word@db:27017/x and smtp://u:p@mail:25"
    assert redact(text) == "cannot reach mongodb://app:***@db:27017/x and smtp://u:***@mail:25"


def test_known_secrets_are_masked_anywhere() -> None:
    redact = Redactor(["hunter22", "xy"])  # too-short secrets are ignored (would mask noise)
    assert redact("auth failed for hunter22; xy stays") == "auth failed for ***; xy stays"


def test_one_line_collapses_and_truncates() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line("x" * 10, limit=5) == "xxxx…"
