"""Tracking numbers: normalize, name the carrier, check format and check digit, build the URL.

Formats, check-digit algorithms and URL templates follow /work/shared/platforms/tracking-numbers.md
(carrier facts from jkeen/tracking_number_data, "TND"); the dummy-number rules are project policy.
Pure functions, stdlib only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle, pairwise
from urllib.parse import quote

log = logging.getLogger(__name__)

CARRIERS: tuple[str, ...] = ("UPS", "USPS", "FedEx", "DHL")

MAX_LENGTH = 50  # the shortest tracking-number field among the platforms' (platforms/*.md)
MIN_LENGTH_OTHER_CARRIER = 4  # carriers we cannot check
# Shortest format per carrier (spec); USPS accepts 13-character S10 numbers besides 20+ digit IMpb.
MIN_LENGTH = {"UPS": 18, "USPS": 13, "FedEx": 12, "DHL": 10}

URL_TEMPLATES = {
    "UPS": "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums=%s",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels=%s",
    "FedEx": "https://www.fedex.com/apps/fedextrack/?tracknumbers=%s",
    "DHL": "http://www.dhl.com/en/express/tracking.html?brand=DHL&AWB=%s",
}

PLACEHOLDER_ERROR = "Looks like a placeholder, not a real tracking number."
UNKNOWN_FORMAT_ERROR = "Unknown tracking number format; name the carrier."

Checksum = Callable[[str, str], bool]


# --- Check-digit algorithms: each takes (serial, check character) --------------------------------


def _value(char: str) -> int:
    """Digit value of a character; letters map to (ASCII - 3) % 10 as in UPS numbers."""
    return int(char) if char.isdigit() else (ord(char) - 3) % 10


def _mod10(weights: tuple[int, int], from_right: bool = False, prefix: str = "") -> Checksum:
    """Mod-10 check with alternating weights, from the left or right, over prefix + serial."""

    def valid(serial: str, check: str) -> bool:
        chars = (prefix + serial)[::-1] if from_right else prefix + serial
        total = sum(_value(c) * weights[i % 2] for i, c in enumerate(chars))
        return check.isdigit() and (10 - total % 10) % 10 == int(check)

    return valid


def _mod11_mod10(weights: tuple[int, ...]) -> Checksum:
    """Sum of digits times repeating weights, mod 11, mod 10 (FedEx Express and GSN)."""

    def valid(serial: str, check: str) -> bool:
        total = sum(int(c) * w for c, w in zip(serial, cycle(weights), strict=False))
        return total % 11 % 10 == int(check)

    return valid


def _mod7(serial: str, check: str) -> bool:
    """Serial number mod 7 (DHL Express)."""
    return int(serial) % 7 == int(check)


def _s10(serial: str, check: str) -> bool:
    """UPU S10: weights 8,6,4,2,3,5,9,7; remainder 0 -> 5, 1 -> 0, else 11 - remainder."""
    weighted = zip(serial, (8, 6, 4, 2, 3, 5, 9, 7), strict=True)
    remainder = sum(int(c) * w for c, w in weighted) % 11
    return {0: 5, 1: 0}.get(remainder, 11 - remainder) == int(check)


_UPS = _mod10((1, 2))
_USPS = _mod10((3, 1), from_right=True)  # rightmost serial digit x 3 (Publication 199)
_USPS_91 = _mod10((3, 1), from_right=True, prefix="91")  # legacy 20-digit: "91" implied
_FEDEX_EXPRESS = _mod11_mod10((3, 1, 7))
_FEDEX_34 = _mod11_mod10((1, 7, 3))
_FEDEX_GROUND = _mod10((1, 3))
_SSCC = _mod10((3, 1))


# --- Formats ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    """One number format: a full-match regex with groups `serial` and `check`, and its checksum."""

    carrier: str
    name: str
    regex: re.Pattern[str]
    checksum: Checksum

    def test(self, number: str) -> bool | None:
        """None when the format does not match, else whether the check digit is right."""
        match = self.regex.fullmatch(number)
        return None if match is None else self.checksum(match["serial"], match["check"])


def _fmt(carrier: str, name: str, pattern: str, checksum: Checksum) -> _Format:
    """A table row with its regex compiled."""
    return _Format(carrier, name, re.compile(pattern), checksum)


_CHECK = r"(?P<check>\d)"
_IMPB = r"(?P<serial>9[1-5]\d{19}(?:\d{4})?)" + _CHECK  # 22 or 26 digits; 91 is legacy

# Detection order: UPS, USPS, FedEx, DHL; a number passing any of a carrier's formats is valid.
FORMATS: tuple[_Format, ...] = (
    _fmt("UPS", "UPS 1Z", r"1Z(?P<serial>[A-Z0-9]{15})(?P<check>[A-Z0-9])", _UPS),
    _fmt("USPS", "USPS IMpb 22/26", _IMPB, _USPS),
    _fmt("USPS", "USPS IMpb 420+ZIP 30/34", r"420\d{5}" + _IMPB, _USPS),
    _fmt("USPS", "USPS IMpb 420+ZIP+4 34", r"420\d{9}(?P<serial>9[1-5]\d{19})" + _CHECK, _USPS),
    _fmt("USPS", "USPS 20", r"(?P<serial>\d{19})" + _CHECK, _USPS),
    _fmt("USPS", "USPS 20 (91 implied)", r"(?P<serial>(?!9[1-5])\d{19})" + _CHECK, _USPS_91),
    _fmt("USPS", "S10 (US)", r"[A-Z]{2}(?P<serial>\d{8})" + _CHECK + "US", _s10),
    _fmt("FedEx", "FedEx Express 12", r"(?P<serial>\d{11})" + _CHECK, _FEDEX_EXPRESS),
    _fmt("FedEx", "FedEx Ground 15", r"(?P<serial>\d{14})" + _CHECK, _FEDEX_GROUND),
    _fmt("FedEx", "FedEx SSCC 18", r"\d{2}(?P<serial>\d{15})" + _CHECK, _SSCC),
    _fmt("FedEx", "FedEx Ground 96 (22)", r"96\d{5}(?P<serial>\d{14})" + _CHECK, _FEDEX_GROUND),
    _fmt("FedEx", "FedEx Express 34", r"100\d{17}(?P<serial>\d{13})" + _CHECK, _FEDEX_34),
    _fmt("FedEx", "FedEx Ground GSN 34", r"96\d{18}(?P<serial>\d{13})" + _CHECK, _FEDEX_34),
    _fmt("DHL", "DHL Express", r"(?P<serial>\d{9,10})" + _CHECK, _mod7),
)


# --- Dummy-number policy --------------------------------------------------------------------------

PLACEHOLDER_WORDS = ("TEST", "DUMMY", "SAMPLE", "FAKE", "NONE")
# Widely published carrier sample/test numbers: UPS's classic sample, and the test numbers in
# UPS's Tracking Web Service Developer Guide.
SAMPLE_NUMBERS = frozenset(
    {
        "1Z999AA10123456784",
        "1Z12345E0205271688",
        "1Z12345E6605272234",
        "1Z12345E0305271640",
        "1Z12345E1305277940",
        "1Z12345E6205277936",
        "1Z12345E1505270452",
        "1Z12345E020527079",
        "1Z648616E192760718",
        "1ZWX0692YP40636269",
    }
)
_REPEATED_DIGIT = re.compile(r"(?:1Z|96|420\d{5}(?:\d{4})?)?(\d)\1*")
_VALID_CHARS = re.compile(r"[A-Z0-9]+")


def _is_sequence(number: str) -> bool:
    """True for 4+ digits that go up or down by 1 throughout, wrapping 9-0 or not."""
    if len(number) < 4 or not number.isdigit():
        return False
    steps = {(int(b) - int(a)) % 10 for a, b in pairwise(number)}
    return steps in ({1}, {9})


def _dummy_rule(number: str) -> str | None:
    """The dummy-number rule the normalized number breaks (placeholder words aside), or None."""
    if _REPEATED_DIGIT.fullmatch(number):
        return "repeated digit"
    if _is_sequence(number):
        return "sequence"
    if number in SAMPLE_NUMBERS:
        return "carrier sample number"
    return None


def _placeholder_word(raw: str, number: str) -> str | None:
    """The placeholder word in the number (N/A checked on the raw input), or None."""
    if "N/A" in raw.upper():
        return "N/A"
    return next((word for word in PLACEHOLDER_WORDS if word in number), None)


# --- Carrier names --------------------------------------------------------------------------------

_ALIASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "UPS": (("ups",), ("united", "parcel", "service")),
    "USPS": (
        ("usps",),
        ("united", "states", "postal", "service"),
        ("us", "postal", "service"),
        ("us", "mail"),
    ),
    "FedEx": (("fedex",), ("fed", "ex"), ("federal", "express")),
    "DHL": (("dhl",),),
}
# Products of these carriers whose numbers do not follow the formats above (left unchecked).
_OTHER_PRODUCTS: dict[str, frozenset[str]] = {
    "UPS": frozenset({"mail", "innovations", "freight"}),
    "USPS": frozenset(),
    "FedEx": frozenset({"freight", "smartpost", "economy"}),
    "DHL": frozenset({"ecommerce", "commerce", "parcel", "paket", "global", "freight", "supply"}),
}


def _words(name: str) -> list[str]:
    """Lowercase alphanumeric words, with runs of single letters joined ("U.S.P.S." -> usps)."""
    words: list[str] = []
    letters = ""
    for word in re.findall(r"[a-z0-9]+", name.lower()):
        if len(word) == 1 and word.isalpha():
            letters += word
            continue
        if letters:
            words.append(letters)
            letters = ""
        words.append(word)
    return [*words, letters] if letters else words


# --- Public API -----------------------------------------------------------------------------------


def normalize(number: str) -> str:
    """Strip spaces and hyphens, uppercase."""
    return "".join((number or "").split()).replace("-", "").upper()


def canonical_carrier(name: str | None) -> str | None:
    """Canonical carrier for a name as people and stores write it, or None if not one we know."""
    words = _words(name or "")
    for carrier, aliases in _ALIASES.items():
        for alias in aliases:
            if tuple(words[: len(alias)]) == alias:
                rest = set(words[len(alias) :])
                return None if rest & _OTHER_PRODUCTS[carrier] else carrier
    return None


def _formats_of(carrier: str) -> tuple[_Format, ...]:
    return tuple(f for f in FORMATS if f.carrier == carrier)


def detect_carrier(number: str) -> str | None:
    """The carrier whose format and check digit the normalized number passes, else None."""
    number = normalize(number)
    return next((f.carrier for f in FORMATS if f.test(number)), None)


def tracking_url(carrier: str | None, number: str) -> str | None:
    """URL from TND's template for the canonical carrier and the normalized number, else None."""
    template = URL_TEMPLATES.get(canonical_carrier(carrier) or "")
    number = normalize(number)
    if template is None or not _VALID_CHARS.fullmatch(number) or len(number) > MAX_LENGTH:
        return None
    return template % quote(number, safe="")


@dataclass(frozen=True)
class TrackingCheck:
    """The outcome of check_tracking_number."""

    number: str  # normalized
    carrier: str | None  # canonical carrier the number was validated against (or detected)
    url: str | None  # tracking_url(carrier, number) when carrier known, else None
    error: str | None  # None when acceptable; else a short sentence for a person
    dummy: bool  # True when refused by the dummy-number policy
    known_format: bool  # True when the number matched a known format with a valid check digit


def _checked(
    number: str, carrier: str | None, error: str | None, dummy: bool = False, known: bool = False
) -> TrackingCheck:
    url = tracking_url(carrier, number) if carrier else None
    return TrackingCheck(number, carrier, url, error, dummy, known)


def _refuse_dummy(number: str, carrier: str | None, rule: str, error: str) -> TrackingCheck:
    log.info("Refused tracking number for %s: %s", carrier or "unknown carrier", rule)
    return _checked(number, carrier, error, dummy=True)


def check_tracking_number(number: str, carrier: str | None) -> TrackingCheck:
    """Normalize, apply the dummy policy, then check format and check digit for the carrier."""
    raw = number or ""
    number = normalize(raw)
    named = canonical_carrier(carrier)
    other_carrier = bool(carrier and carrier.strip()) and named is None

    if not number:
        return _checked(number, named, "Enter a tracking number.")
    word = _placeholder_word(raw, number)
    if word:
        return _refuse_dummy(number, named, f"placeholder word {word}", PLACEHOLDER_ERROR)
    if not _VALID_CHARS.fullmatch(number):
        return _checked(number, named, "A tracking number has only letters and digits.")
    if len(number) > MAX_LENGTH:
        return _checked(number, named, f"Too long for a tracking number (over {MAX_LENGTH}).")
    rule = _dummy_rule(number)
    if rule:
        return _refuse_dummy(number, named, rule, PLACEHOLDER_ERROR)

    if other_carrier:
        if len(number) < MIN_LENGTH_OTHER_CARRIER:
            return _refuse_dummy(number, None, "too short", "Too short for a tracking number.")
        return _checked(number, None, None)

    detected = detect_carrier(number)
    if named is None:
        if detected is None:
            return _checked(number, None, UNKNOWN_FORMAT_ERROR)
        return _checked(number, detected, None, known=True)

    results = [f.test(number) for f in _formats_of(named)]
    if any(results):
        return _checked(number, named, None, known=True)
    if detected is not None:
        error = f"This looks like a {detected} number, not {named}."
        return _checked(number, named, error, known=True)
    if len(number) < MIN_LENGTH[named]:
        error = f"Too short for a {named} tracking number."
        return _refuse_dummy(number, named, "too short", error)
    if any(result is False for result in results):
        return _checked(number, named, f"Not a valid {named} tracking number (check digit).")
    return _checked(number, named, f"Not a {named} tracking number format.")
