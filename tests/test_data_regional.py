"""data/regional/ holds copies of the tables in ../shared/data/regional/ that the shipped scenarios
cite (so a clone alone has the sources of their regions, firm entry and exit and provincial funds),
and the regions those scenarios declare keep the national calibration (docs/regions.md)."""

from __future__ import annotations

import os
import re
import tomllib

import pytest
from conftest import ROOT

COPIES = ROOT / "data" / "regional"
SHARED = ROOT.parent / "shared" / "data" / "regional"
LEVELS = ("device", "line", "factory", "ecosystem")
# The scenarios that share one region block, entry and exit, and the two provincial funds.
REGIONAL = ("baseline", "constrained", "accelerated", "broad-definition", "regional-quotas")


@pytest.mark.skipif(not SHARED.is_dir() and not os.environ.get("CI"),
                    reason="../shared/data is not beside the checkout")
def test_the_copied_regional_tables_equal_the_shared_ones():
    """data/regional/ is a copy of the cited part of ../shared/data/regional/; CI has ../shared
    beside the checkout, where a drift or a missing original fails."""
    copies = sorted(COPIES.glob("*.csv"))
    assert copies, f"{COPIES} holds no tables"
    for copy in copies:
        path = SHARED / copy.name
        assert path.is_file() and copy.read_bytes() == path.read_bytes(), copy.name


def test_every_regional_table_a_scenario_cites_is_copied():
    cited: set[str] = set()
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        cited |= set(re.findall(r"regional/([\w.-]+\.csv)", path.read_text(encoding="utf-8")))
    assert cited, "no scenario cites regional/*.csv"
    assert not sorted(n for n in cited if not (COPIES / n).is_file())


def raw(name: str) -> dict:
    with open(ROOT / "scenarios" / f"{name}.toml", "rb") as fh:
        return tomllib.load(fh)


@pytest.mark.parametrize("name", REGIONAL)
def test_regions_keep_the_national_calibration(name):
    """Shares sum to 1 and the firm-weighted mean multiplier is 1 at every level, so the regions
    move no national hazard at the start (each region starts with the national level mix)."""
    regions = raw(name)["population"]["region"]
    assert abs(sum(r["share"] for r in regions) - 1) <= 1e-6
    for level in LEVELS:
        mean = sum(r["share"] * r["multiplier"][level] for r in regions)
        assert abs(mean - 1) <= 1e-5, (level, mean)


def test_the_shipped_scenarios_share_regions_turnover_and_provincial_funds():
    def regional(name: str) -> tuple:
        doc = raw(name)
        pop = doc["population"]
        regions = [{k: v for k, v in r.items() if k != "quota"} for r in pop["region"]]
        funds = [p for p in doc["policy"] if "regions" in p]
        return regions, [pop[k] for k in ("entry", "exit", "entry_device")], funds

    first = regional(REGIONAL[0])
    assert len(first[2]) == 2
    for name in REGIONAL[1:]:
        assert regional(name) == first, name
    quotas = [r["quota"] for r in raw("regional-quotas")["population"]["region"]]
    assert abs(sum(quotas) - 1) <= 1e-6
