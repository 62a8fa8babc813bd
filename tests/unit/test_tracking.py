"""Unit tests for gateway.tracking: formats, check digits, dummy policy, carrier names, URLs.

Valid/invalid numbers come from the spec (shared/platforms/tracking-numbers.md) and from the
test_numbers of jkeen/tracking_number_data couriers/*.json, each checked against this module.
"""

import dataclasses

import pytest

from gateway import tracking
from gateway.tracking import (
    CARRIERS,
    PLACEHOLDER_ERROR,
    UNKNOWN_FORMAT_ERROR,
    TrackingCheck,
    canonical_carrier,
    check_tracking_number,
    detect_carrier,
    normalize,
    tracking_url,
)

VALID = [
    # UPS 1Z (TND)
    ("UPS", "1Z5R89390357567127"),
    ("UPS", "1Z879E930346834440"),
    ("UPS", "1Z410E7W0392751591"),
    ("UPS", "1Z8V92A70367203024"),
    # USPS IMpb 22 and 26 digits, 91 legacy 22 (spec, TND)
    ("USPS", "9400111899223197428497"),
    ("USPS", "9400111201080805483016"),
    ("USPS", "9361289878700317633795"),
    ("USPS", "9405803699300124287899"),
    ("USPS", "9505511069605048600624"),
    ("USPS", "9261292700768711948021"),
    ("USPS", "9101123456789000000013"),
    ("USPS", "92748931507708513018050063"),
    # USPS 420 + ZIP (30) and 420 + ZIP+4 (34)
    ("USPS", "420221539101026837331000039521"),
    ("USPS", "4201002334249200190132607600833457"),
    ("USPS", "4201028200009261290113185417468510"),
    # USPS legacy 20 digits: plain, and with 91 implied
    ("USPS", "03071790000523483741"),
    ("USPS", "71123456789123456787"),
    ("USPS", "71969010756003077385"),
    # S10 (spec example), accepted as USPS because the country is US
    ("USPS", "EJ958083578US"),
    # FedEx Express 12, Ground 15, SSCC 18, Ground 96 (22), Express 34, Ground GSN 34
    ("FedEx", "986578788855"),
    ("FedEx", "477179081230"),
    ("FedEx", "799531274483"),
    ("FedEx", "974367662710"),
    ("FedEx", "449044304137821"),
    ("FedEx", "041441760228964"),
    ("FedEx", "568283610012734"),
    ("FedEx", "000123450000000027"),
    ("FedEx", "9611020987654312345672"),
    ("FedEx", "1001921334250001000300779017972697"),
    ("FedEx", "1002297871540001000300790695517286"),
    ("FedEx", "9622001560001234567100794808390594"),
    ("FedEx", "9632001560123456789900794808390594"),
    # DHL Express 10 and 11 digits
    ("DHL", "3318810025"),
    ("DHL", "8487135506"),
    ("DHL", "1099255990"),
    ("DHL", "73891051146"),
]

# One wrong check digit: the format matches, the check digit does not.
CHECK_DIGIT_WRONG = [
    ("UPS", "1Z5R89390357567128"),
    ("USPS", "9400111899223197428490"),
    ("USPS", "9261292700768711948020"),
    ("USPS", "4201028200009261290113185417468511"),
    ("USPS", "03071790000523483742"),
    ("USPS", "EJ958083579US"),
    ("FedEx", "996578788855"),
    ("FedEx", "568283610012732"),
    ("FedEx", "449044304137822"),
    ("FedEx", "9611020987654312345673"),
    ("FedEx", "1001901781990001000300617767839438"),
    ("FedEx", "9622001560001234567100794808390595"),
    ("DHL", "3318810010"),
    ("DHL", "3318810034"),
    ("DHL", "73891051145"),
]


@pytest.mark.parametrize(("carrier", "number"), VALID)
def test_published_valid_numbers_pass_for_their_carrier(carrier: str, number: str) -> None:
    result = check_tracking_number(number, carrier)
    assert result == TrackingCheck(
        number=number,
        carrier=carrier,
        url=tracking.URL_TEMPLATES[carrier] % number,
        error=None,
        dummy=False,
        known_format=True,
    )


@pytest.mark.parametrize(("carrier", "number"), VALID)
def test_published_valid_numbers_are_detected_without_a_carrier(carrier: str, number: str) -> None:
    assert detect_carrier(number) == carrier
    result = check_tracking_number(number, None)
    assert (result.carrier, result.error, result.known_format) == (carrier, None, True)


@pytest.mark.parametrize(("carrier", "number"), CHECK_DIGIT_WRONG)
def test_one_wrong_check_digit_is_a_check_digit_error(carrier: str, number: str) -> None:
    result = check_tracking_number(number, carrier)
    assert result.error == f"Not a valid {carrier} tracking number (check digit)."
    assert (result.carrier, result.dummy, result.known_format) == (carrier, False, False)
    assert detect_carrier(number) is None


@pytest.mark.parametrize(
    ("carrier", "number"),
    [
        ("UPS", "2Z5R89390357567127"),  # TND invalid: not 1Z
        ("UPS", "1A5R89390357567127"),
        ("UPS", "1Z5R89390357567127A"),  # 19 characters
        ("USPS", "RB123456785GB"),  # S10 from another country
        ("USPS", "9400111899223197"),  # 16 digits
        ("FedEx", "1Z5R89390357"),  # 12 characters, but FedEx numbers are all digits
        ("DHL", "JJD0099999999"),  # DHL piece ID: no check digit, so not a format we check
    ],
)
def test_number_in_no_format_of_the_carrier_is_a_format_error(carrier: str, number: str) -> None:
    result = check_tracking_number(number, carrier)
    assert result.error == f"Not a {carrier} tracking number format."
    assert (result.carrier, result.dummy, result.known_format) == (carrier, False, False)


@pytest.mark.parametrize(
    ("named", "number", "actual"),
    [
        ("UPS", "449044304137821", "FedEx"),
        ("UPS", "3318810025", "DHL"),
        ("FedEx", "1Z5R89390357567127", "UPS"),
        ("FedEx", "9400111899223197428497", "USPS"),
        ("USPS", "9611020987654312345672", "FedEx"),
        ("USPS", "986578788855", "FedEx"),
        ("DHL", "986578788855", "FedEx"),
        ("DHL", "EJ958083578US", "USPS"),
    ],
)
def test_number_of_another_carrier_says_which(named: str, number: str, actual: str) -> None:
    result = check_tracking_number(number, named)
    assert result.error == f"This looks like a {actual} number, not {named}."
    assert (result.carrier, result.dummy, result.known_format) == (named, False, True)


@pytest.mark.parametrize(
    ("number", "carrier"),
    [
        ("0000000000", "DHL"),  # passes DHL mod 7
        ("0000000000", None),
        ("1111111111", "DHL"),
        ("000000000000", "FedEx"),  # passes FedEx Express
        ("1Z0000000000000000", "UPS"),  # repeated digit after 1Z, passes the UPS check
        ("1Z1111111111111111", "UPS"),
        ("9600000000000000000000", "FedEx"),  # repeated digit after 96, passes FedEx 96
        ("420123450000000000000000000000", "USPS"),  # repeated digit after 420 + ZIP
        ("4201234567890000000000000000000000", "USPS"),  # after 420 + ZIP+4
        ("1234567890", "DHL"),
        ("0123456789", "DHL"),
        ("9876543210", "DHL"),
        ("7890123456", None),  # ascending with wrap-around
        ("3210987654", "DHL"),  # descending with wrap-around
        ("1Z999AA10123456784", "UPS"),  # UPS's published sample, check digit valid
        ("1Z999AA10123456784", None),
        ("1Z12345E6605272234", "UPS"),  # UPS developer guide test number, check digit valid
        ("TEST123456", "UPS"),
        ("test123456", None),
        ("DUMMY", "FedEx"),
        ("sample-0001", "Canada Post"),
        ("FAKE1234567890", "DHL"),
        ("NONE", None),
        ("n/a", "UPS"),
        ("N/A", None),
        ("0000", "Canada Post"),  # unknown carrier: dummy policy still applies
    ],
)
def test_dummy_numbers_are_refused(number: str, carrier: str | None) -> None:
    result = check_tracking_number(number, carrier)
    assert result.error == PLACEHOLDER_ERROR
    assert result.dummy
    assert not result.known_format


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        # Built with the spec's S10 rule: remainder 1 -> check 0, remainder 0 -> check 5.
        ("EJ958083520US", True),
        ("EJ958083525US", False),
        ("EJ958083555US", True),
        ("EJ958083550US", False),
    ],
)
def test_s10_special_remainders(number: str, valid: bool) -> None:
    assert (check_tracking_number(number, "USPS").error is None) is valid


def test_the_dummy_policy_runs_before_checksums() -> None:
    # These pass a checksum, so only the dummy policy refuses them.
    assert detect_carrier("0000000000") == "DHL"
    assert detect_carrier("1Z999AA10123456784") == "UPS"
    assert detect_carrier("1Z0000000000000000") == "UPS"
    assert check_tracking_number("0000000000", "DHL").dummy


@pytest.mark.parametrize(
    ("number", "carrier", "error"),
    [
        ("1Z5R89390", "UPS", "Too short for a UPS tracking number."),
        ("940011189922", "USPS", "Too short for a USPS tracking number."),
        ("44904430413", "FedEx", "Too short for a FedEx tracking number."),
        ("331881002", "DHL", "Too short for a DHL tracking number."),
        ("AB1", "Canada Post", "Too short for a tracking number."),
    ],
)
def test_too_short_for_the_carrier_is_refused(number: str, carrier: str, error: str) -> None:
    result = check_tracking_number(number, carrier)
    assert (result.error, result.dummy) == (error, True)


@pytest.mark.parametrize(
    ("number", "error"),
    [
        ("", "Enter a tracking number."),
        ("  - ", "Enter a tracking number."),
        ("1Z5R8939/0357567127", "A tracking number has only letters and digits."),
        ("33188100_25", "A tracking number has only letters and digits."),
        ("1Z5R89390357567127" * 3, "Too long for a tracking number (over 50)."),
    ],
)
def test_malformed_input_is_refused_without_being_a_dummy(number: str, error: str) -> None:
    for carrier in ("UPS", None, "Canada Post"):
        result = check_tracking_number(number, carrier)
        assert (result.error, result.dummy, result.known_format) == (error, False, False)


def test_unknown_format_without_a_carrier() -> None:
    result = check_tracking_number("123457", None)
    assert result == TrackingCheck("123457", None, None, UNKNOWN_FORMAT_ERROR, False, False)


@pytest.mark.parametrize("carrier", ["", "   ", None])
def test_blank_carrier_means_detect(carrier: str | None) -> None:
    assert check_tracking_number("3318810025", carrier).carrier == "DHL"
    assert check_tracking_number("3318810026", carrier).error == UNKNOWN_FORMAT_ERROR


@pytest.mark.parametrize("number", ["CP123456789CA", "4711", "1Z5R89390357567127", "0123-9"])
def test_other_carrier_is_not_checked(number: str) -> None:
    result = check_tracking_number(number, "Canada Post")
    assert result == TrackingCheck(normalize(number), None, None, None, False, False)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("1z 5r89 3903 5756 7127", "1Z5R89390357567127"),
        (" 9400-1118-9922-3197-4284-97 ", "9400111899223197428497"),
        ("ej\t958 083 578\nus", "EJ958083578US"),
        ("  ", ""),
    ],
)
def test_normalize_strips_spaces_and_hyphens_and_uppercases(raw: str, normalized: str) -> None:
    assert normalize(raw) == normalized


def test_check_normalizes_and_builds_the_url_from_the_normalized_number() -> None:
    result = check_tracking_number(" 1z5r-8939-0357-5671-27 ", "ups ground")
    assert result.number == "1Z5R89390357567127"
    assert result.carrier == "UPS"
    assert result.error is None
    assert result.url == (
        "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums=1Z5R89390357567127"
    )


@pytest.mark.parametrize(
    ("carrier", "number", "url"),
    [
        (
            "UPS",
            "1Z5R 8939 0357 5671 27",
            "https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums=1Z5R89390357567127",
        ),
        (
            "USPS",
            "9400 1118 9922 3197 4284 97",
            "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223197428497",
        ),
        (
            "FedEx",
            "4490-4430-4137-821",
            "https://www.fedex.com/apps/fedextrack/?tracknumbers=449044304137821",
        ),
        (
            "DHL",
            "33 1881 0025",
            "http://www.dhl.com/en/express/tracking.html?brand=DHL&AWB=3318810025",
        ),
        (
            "Federal Express",
            "449044304137821",
            "https://www.fedex.com/apps/fedextrack/?tracknumbers=449044304137821",
        ),
    ],
)
def test_tracking_url_uses_the_template_and_the_normalized_number(
    carrier: str, number: str, url: str
) -> None:
    assert tracking_url(carrier, number) == url


@pytest.mark.parametrize(
    ("carrier", "number"),
    [
        (None, "1Z5R89390357567127"),
        ("Canada Post", "1Z5R89390357567127"),
        ("UPS", ""),
        ("UPS", "1Z5R8939&x=1"),
    ],
)
def test_tracking_url_is_none_without_a_known_carrier_or_usable_number(
    carrier: str | None, number: str
) -> None:
    assert tracking_url(carrier, number) is None


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("ups", "UPS"),
        ("UPS", "UPS"),
        ("UPS Ground", "UPS"),
        ("United Parcel Service", "UPS"),
        ("U.P.S.", "UPS"),
        ("usps", "USPS"),
        ("United States Postal Service", "USPS"),
        ("US Postal Service", "USPS"),
        ("U.S. Postal Service", "USPS"),
        ("USPS Priority Mail", "USPS"),
        ("fedex", "FedEx"),
        ("FedEx Ground", "FedEx"),
        ("Federal Express", "FedEx"),
        ("Fed Ex", "FedEx"),
        ("dhl", "DHL"),
        ("DHL Express", "DHL"),
        ("Canada Post", None),
        ("Royal Mail", None),
        ("Upsilon Couriers", None),
        ("DHL eCommerce", None),  # numbers not in the DHL Express format
        ("FedEx SmartPost", None),
        ("UPS Mail Innovations", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_carrier(name: str | None, canonical: str | None) -> None:
    assert canonical_carrier(name) == canonical


def test_canonical_names_map_to_themselves() -> None:
    assert tuple(canonical_carrier(c) for c in CARRIERS) == CARRIERS == tracking.CARRIERS
    assert set(tracking.URL_TEMPLATES) == set(CARRIERS)


def test_formats_are_listed_in_detection_order() -> None:
    carriers = [f.carrier for f in tracking.FORMATS]
    assert carriers == sorted(carriers, key=CARRIERS.index)
    assert set(carriers) == set(CARRIERS)


def test_tracking_check_is_frozen() -> None:
    result = check_tracking_number("3318810025", "DHL")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.error = "changed"  # type: ignore[misc]
