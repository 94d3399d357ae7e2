"""The invitation documents the scheduler creates."""

from __future__ import annotations

from formafriend_scheduler.store.invitations import SHORT_CODE_ALPHABET, short_code


def test_a_short_code_is_six_characters_of_the_apps_alphabet_all_of_them_used() -> None:
    codes = [short_code() for _ in range(2000)]
    assert all(len(code) == 6 and set(code) <= set(SHORT_CODE_ALPHABET) for code in codes)
    assert set("".join(codes)) == set(SHORT_CODE_ALPHABET)
    assert len(set(codes)) == len(codes)
