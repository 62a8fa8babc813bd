"""Keyset: where a reconciliation listing ordered by time resumes (pure, no platform)."""

from __future__ import annotations

from gateway.platforms.base import Keyset

SINCE = "2026-03-01T00:00:00Z"
T1 = "2026-03-02T10:00:00Z"
T2 = "2026-03-02T11:00:00Z"


def test_parse_without_a_token_starts_at_since_on_page_1():
    assert Keyset.parse(None, SINCE) == Keyset(SINCE, (), 1)
    assert Keyset.parse("", SINCE) == Keyset(SINCE, (), 1)


def test_fresh_drops_only_the_ids_seen_at_the_keysets_time():
    keyset = Keyset(T1, ("1", "2"))
    listed = [("1", T1), ("2", T2), ("3", T1), ("4", T2)]

    # "2" was seen at T1 but is listed at T2: it changed again, so it is fresh
    assert keyset.fresh(listed) == [("2", T2), ("3", T1), ("4", T2)]


def test_fresh_keeps_everything_when_nothing_was_seen():
    listed = [("1", SINCE), ("2", T1)]

    assert Keyset.parse(None, SINCE).fresh(listed) == listed


def test_a_short_page_is_the_last():
    assert Keyset(T1).next_page([("1", T1), ("2", T2)], page_size=3) is None
    assert Keyset(T1).next_page([], page_size=3) is None


def test_a_full_page_ending_at_a_later_time_goes_on_from_that_time_on_page_1():
    listed = [("1", T1), ("2", T2), ("3", T2)]

    token = Keyset(SINCE, ("9",), 4).next_page(listed, page_size=3)

    assert Keyset.parse(token, SINCE) == Keyset(T2, ("2", "3"), 1)


def test_a_full_page_all_at_the_keysets_time_goes_on_by_page_number_within_it():
    listed = [("3", T1), ("4", T1)]

    token = Keyset(T1, ("1", "2"), 1).next_page(listed, page_size=2)

    assert Keyset.parse(token, SINCE) == Keyset(T1, ("1", "2", "3", "4"), 2)


def test_a_token_round_trips_through_parse():
    keyset = Keyset(T1, ("1", "2"), 3)
    listed = [("5", T1), ("6", T1)]

    token = keyset.next_page(listed, page_size=2)
    again = Keyset.parse(token, "ignored once there is a token")

    assert isinstance(token, str)
    assert again == Keyset(T1, ("1", "2", "5", "6"), 4)
    assert Keyset.parse(again.next_page([("7", T2), ("8", T2)], 2), SINCE) == Keyset(
        T2, ("7", "8"), 1
    )
