"""The city's service list (wardprobe/service_list.py): typed at load, and a
bad line refused with its number and what is wrong with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from wardprobe.service_list import CityService, ServiceListError, load_services, parse_services

GOOD = """# the city's services
name,department,kind
CanTho.gov.vn.,Văn phòng UBND thành phố,portal

dichvucong.cantho.gov.vn, Văn phòng UBND thành phố ,public_service
cantho.gov.vn,Văn phòng UBND thành phố,mail_domain
"""


def test_a_good_list_is_typed_and_names_are_normalised() -> None:
    services = parse_services(GOOD)
    assert services == (
        CityService(name="cantho.gov.vn", department="Văn phòng UBND thành phố", kind="portal"),
        CityService(name="dichvucong.cantho.gov.vn", department="Văn phòng UBND thành phố",
                    kind="public_service"),
        CityService(name="cantho.gov.vn", department="Văn phòng UBND thành phố",
                    kind="mail_domain"),
    )  # fmt: skip
    assert [s.is_web for s in services] == [True, True, False]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("cantho_gov.vn,VP,portal", "line 3: 'cantho_gov.vn' is not a host name"),
        ("-cantho.gov.vn,VP,portal", "line 3: '-cantho.gov.vn' is not a host name"),
        ("localhost,VP,portal", "line 3: 'localhost' is not a full domain name"),
        ("cantho.gov.vn,,portal", "line 3: cantho.gov.vn has no department"),
        ("cantho.gov.vn,VP,website", "line 3: unknown kind 'website'"),
        ("cantho.gov.vn,VP", "line 3: 2 fields, expected 3"),
        (
            "a.cantho.gov.vn,VP,portal",
            "line 3: a.cantho.gov.vn (portal) is already listed on line 2",
        ),
    ],
)
def test_a_bad_line_is_refused_with_its_number(line: str, message: str) -> None:
    text = f"name,department,kind\na.cantho.gov.vn,VP,portal\n{line}\n"
    with pytest.raises(ServiceListError, match="^services.csv, " + message.replace("(", r"\(")
                       .replace(")", r"\)")):  # fmt: skip
        parse_services(text, "services.csv")


def test_a_file_without_the_header_or_unreadable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServiceListError, match="line 1: the header must be name,department,kind"):
        parse_services("cantho.gov.vn,VP,portal\n")
    with pytest.raises(ServiceListError, match="empty"):
        parse_services("# nothing yet\n")
    with pytest.raises(ServiceListError, match="cannot be read"):
        load_services(tmp_path / "missing.csv")
    listed = tmp_path / "services.csv"
    listed.write_text(GOOD, "utf-8")
    assert len(load_services(listed)) == 3
