"""Reference data loaded once from the JSON files beside this module (see README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any


@dataclass(frozen=True)
class Province:
    code: str
    name_th: str
    name_en: str


@dataclass(frozen=True)
class District:
    code: str
    province_code: str
    name_th: str
    name_en: str


@dataclass(frozen=True)
class Abolished:
    """A district or subdistrict code DOPA abolished, and the codes that took its place."""

    code: str
    level: str  # "district" | "subdistrict"
    name_th: str
    abolished_on: str  # ISO date
    successors: tuple[str, ...]  # empty when geothai knows none
    basis: str | None  # "notice": a reviewed legal notice; "name": a same-name match only
    notice: str | None  # the notice (title, Royal Gazette reference, URL) when basis is notice

    @property
    def successor(self) -> str | None:
        """The one code that replaces this one, when a notice says so; else None.

        Several successors (an area split) cannot be told apart from the old code alone, and a
        successor found by name only is likely but not proven: neither is a safe repair.
        """
        if self.basis == "notice" and len(self.successors) == 1:
            return self.successors[0]
        return None


@dataclass(frozen=True)
class Region:
    code: str
    name_th: str
    name_en: str
    provinces: tuple[str, ...]


@dataclass(frozen=True)
class Agency:
    code: str
    parent: str | None  # the ministry's code; None for a ministry (or OPM, RTP) itself
    name_th: str
    name_en: str

    @property
    def ministry_code(self) -> str:
        return self.parent or self.code


def _load(name: str) -> dict[str, Any]:
    return json.loads(files(__name__).joinpath(name).read_text(encoding="utf-8"))


@cache
def provinces() -> dict[str, Province]:
    return {row["code"]: Province(**row) for row in _load("provinces.json")["rows"]}


@cache
def districts() -> dict[str, District]:
    return {row["code"]: District(**row) for row in _load("districts.json")["rows"]}


@cache
def subdistricts() -> dict[str, tuple[str, ...]]:
    """District code → the 6-digit codes of its subdistricts (tambon / khwaeng)."""
    return {row["district_code"]: tuple(row["codes"]) for row in _load("subdistricts.json")["rows"]}


@cache
def abolished() -> dict[str, Abolished]:
    """Abolished district (4-digit) and subdistrict (6-digit) codes → what DOPA says of them."""
    return {
        row["code"]: Abolished(**{**row, "successors": tuple(row["successors"])})
        for row in _load("abolished.json")["rows"]
    }


@cache
def regions() -> dict[str, Region]:
    return {
        row["code"]: Region(row["code"], row["name_th"], row["name_en"], tuple(row["provinces"]))
        for row in _load("regions.json")["regions"]
    }


@cache
def _region_by_province() -> dict[str, Region]:
    return {code: region for region in regions().values() for code in region.provinces}


def region_of(province_code: str) -> Region:
    return _region_by_province()[province_code]


@cache
def agencies() -> dict[str, Agency]:
    return {row["code"]: Agency(**row) for row in _load("agencies.json")["agencies"]}


def ministry_of(agency_code: str) -> Agency:
    return agencies()[agencies()[agency_code].ministry_code]
