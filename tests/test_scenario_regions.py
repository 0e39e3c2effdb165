"""The gate for regions, regional quotas, regional policies and firm entry and exit:
`[[population.region]]`, `[population.quotas]`, `population.entry|exit|entry_device` and
`policy[].regions`. Valid files load to typed values; each fault is one problem line."""

from __future__ import annotations

import copy
import re

import pytest
from conftest import ROOT, base_raw

from sim.cli.main import main
from sim.explore.design import resolve_ranges
from sim.scenario import (
    NATIONAL,
    Quotas,
    Region,
    ScenarioError,
    dumps,
    load,
    schema,
    set_key,
    validate,
)


def regional_raw() -> dict:
    """base_raw with three regions (two with quotas), quotas that push, firm turnover and a
    policy limited to two regions."""
    raw = base_raw()
    raw["population"].update(
        region=[
            {"name": "Jiangsu", "share": 0.5, "multiplier": {"line": 1.5}, "quota": 0.4},
            {"name": "Guangdong", "share": 0.3, "multiplier": 1.2, "quota": 0.35},
            {"name": "Sichuan", "share": 0.2},
        ],
        quotas={"push": 2.0, "every": 6},
        entry=0.05, exit=0.02, entry_device=0.25,
    )
    raw["policy"][0]["regions"] = ["Jiangsu", "Sichuan"]
    return raw


def _with(raw: dict | None = None, **changes) -> dict:
    """`raw` (default regional_raw()) with dotted keys (`__` for `.`) set or, for None, removed."""
    data = copy.deepcopy(raw) if raw is not None else regional_raw()
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            *path, last = key.split(".")
            node = data
            for part in path:
                node = node[int(part)] if isinstance(node, list) else node[part]
            del node[last]
        else:
            set_key(data, key, value)
    return data


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        validate(raw, source="r.toml")
    return info.value.problems


# ---------------------------------------------------------------------------------------------
# Valid scenarios


def test_regions_quotas_turnover_and_a_regional_policy_load_typed():
    sc = validate(regional_raw(), source="r.toml")
    assert sc.regions == (
        Region("Jiangsu", 0.5, (1.0, 1.5, 1.0, 1.0), 0.4),
        Region("Guangdong", 0.3, (1.2,) * 4, 0.35),
        Region("Sichuan", 0.2, (1.0,) * 4, None),
    )
    assert sc.region_names == ("Jiangsu", "Guangdong", "Sichuan")
    assert sc.quotas == Quotas(push=2.0, every=6)
    assert isinstance(sc.quotas.every, int)
    assert (sc.entry, sc.exit, sc.entry_device) == (0.05, 0.02, 0.25)
    assert sc.policies[0].regions == ("Jiangsu", "Sichuan")
    assert sc.policies[0].segments == ("sme",)
    assert sc.policies[0].budget == 1.0e9 and sc.policies[0].cost[1] == 1.0e6


def test_without_regions_the_scenario_is_national_and_closed():
    for raw in (base_raw(), _with(base_raw(), population__region=[])):
        sc = validate(raw, source="r.toml")
        assert sc.regions == () and sc.region_names == (NATIONAL,)
        assert sc.quotas == Quotas(1.0, 3)
        assert (sc.entry, sc.exit, sc.entry_device) == (0.0, 0.0, 0.0)
        assert sc.policies[0].regions is None


def test_a_quota_without_the_quotas_table_is_only_reported():
    sc = validate(_with(population__quotas=None), source="r.toml")
    assert sc.quotas == Quotas(push=1.0, every=3)
    assert [r.quota for r in sc.regions] == [0.4, 0.35, None]


def test_edges_are_allowed():
    sc = validate(_with(population__region__0__quota=1.0, population__quotas__every=24,
                        population__entry=1.0, population__exit=0.0,
                        population__entry_device=1.0,
                        population__region__2__multiplier={"device": 0.0}),
                  source="r.toml")
    assert sc.regions[0].quota == 1.0 and sc.quotas.every == 24
    assert sc.regions[2].multiplier == (0.0, 1.0, 1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# One problem line per fault

REG = "population.region"
BAD = [
    ("shares-sum", _with(population__region__0__share=0.6),
     [f"{REG}: shares sum to 1.1: they must sum to 1"]),
    ("share-above-one", _with(population__region__0__share=1.5),
     [f"{REG}.Jiangsu.share = 1.5", "[0, 1]"]),
    ("share-missing", _with(population__region__2__share=None),
     [f"{REG}.Sichuan.share: missing"]),
    ("duplicate-name", _with(population__region__1__name="Jiangsu"),
     [f"{REG}.Jiangsu.name = 'Jiangsu': must be unique among regions"]),
    ("national-name", _with(population__region__2__name="national",
                            policy__0__regions=["Jiangsu"]),
     [f"{REG}.national.name = 'national'", "choose another name"]),
    ("name-missing", _with(population__region__2__name=None, policy__0__regions=["Jiangsu"]),
     [f"{REG}[2].name: missing"]),
    ("negative-multiplier", _with(population__region__0__multiplier__line=-1),
     [f"{REG}.Jiangsu.multiplier.line = -1", "must be a number in [0, 1_000_000]"]),
    ("negative-scalar-multiplier", _with(population__region__1__multiplier=-0.5),
     [f"{REG}.Guangdong.multiplier = -0.5"]),
    ("multiplier-unknown-level", _with(population__region__0__multiplier={"lines": 2}),
     [f"{REG}.Jiangsu.multiplier.lines", "did you mean 'line'"]),
    ("quota-zero", _with(population__region__0__quota=0),
     [f"{REG}.Jiangsu.quota = 0", "must be a number in (0, 1]"]),
    ("quota-above-one", _with(population__region__1__quota=1.2),
     [f"{REG}.Guangdong.quota = 1.2", "(0, 1]"]),
    ("unknown-key-in-region", _with(population__region__0__quotaa=0.3),
     [f"{REG}[0].quotaa: unknown key", "did you mean 'quota'"]),
    ("region-not-tables", _with(population__region="east"),
     [f"{REG} = 'east': must be [[population.region]] tables"]),
    ("unknown-region-in-policy", _with(policy__0__regions=["Jiangsuu"]),
     ["policy[0].regions = 'Jiangsuu': is not a region", "did you mean 'Jiangsu'"]),
    ("policy-regions-not-a-list", _with(policy__0__regions="Jiangsu"),
     ["policy[0].regions = 'Jiangsu': must be a list of region names"]),
    ("policy-regions-without-regions", _with(base_raw(), policy__0__regions=["Jiangsu"]),
     ["policy[0].regions = ['Jiangsu']", "needs [[population.region]] tables"]),
    ("quotas-without-quota", _with(population__region__0__quota=None,
                                   population__region__1__quota=None),
     ["population.quotas: no region has a quota"]),
    ("quotas-without-regions", _with(base_raw(), population__quotas={"push": 2}),
     ["population.quotas: no region has a quota"]),
    ("push-below-one", _with(population__quotas__push=0.5),
     ["population.quotas.push = 0.5", "[1, 1000]"]),
    ("every-zero", _with(population__quotas__every=0),
     ["population.quotas.every = 0", "must be a whole number in [1, 24]"]),
    ("every-fraction", _with(population__quotas__every=2.5),
     ["population.quotas.every = 2.5", "whole number"]),
    ("unknown-key-in-quotas", _with(population__quotas__pushh=2),
     ["population.quotas.pushh: unknown key", "did you mean 'push'"]),
    ("entry-above-one", _with(population__entry=1.5),
     ["population.entry = 1.5", "[0, 1]", "entrants per year"]),
    ("exit-negative", _with(population__exit=-0.1), ["population.exit = -0.1", "[0, 1]"]),
    ("entry-device-above-one", _with(population__entry_device=2),
     ["population.entry_device = 2", "[0, 1]"]),
    ("unknown-population-key", _with(population__exits=0.1),
     ["population.exits: unknown key", "did you mean 'exit'"]),
]


@pytest.mark.parametrize(("case", "raw", "fragments"), BAD, ids=[b[0] for b in BAD])
def test_each_fault_is_exactly_one_problem_line(case, raw, fragments):
    problems = _problems(raw)
    assert len(problems) == 1, problems
    assert problems[0].startswith("r.toml: ")
    for fragment in fragments:
        assert fragment in problems[0], f"{case}: {fragment!r} not in {problems[0]!r}"


def test_faults_are_reported_together():
    raw = _with(population__region__0__quota=0, population__entry=2,
                policy__0__regions=["Hubei"])
    assert len(_problems(raw)) == 3


@pytest.mark.parametrize("case", ["shares-sum", "unknown-region-in-policy", "every-zero"])
def test_sim_check_refuses_a_bad_regional_file(tmp_path, capsys, case):
    raw = next(b[1] for b in BAD if b[0] == case)
    path = tmp_path / "bad.toml"
    path.write_text(dumps(raw), encoding="utf-8")
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and not captured.out
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(str(path)), captured.err


def test_sim_check_accepts_a_regional_file(tmp_path, capsys):
    path = tmp_path / "good.toml"
    path.write_text(dumps(regional_raw()), encoding="utf-8")
    assert main(["check", str(path)]) == 0, capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Dotted keys: --set overrides and sweeps


def test_regions_are_addressed_by_name_or_index_in_overrides(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(dumps(regional_raw()), encoding="utf-8")
    sc = load(path, ["population.region.Jiangsu.multiplier.line=2",
                     "population.region.Jiangsu.share=0.4", "population.region.Sichuan.share=0.3",
                     "population.region.Sichuan.quota=0.25",
                     "population.region.Sichuan.multiplier.factory=3",
                     "population.region.1.quota=0.5", "population.quotas.push=3",
                     "population.entry=0.1"])
    jiangsu, guangdong, sichuan = sc.regions
    assert jiangsu.multiplier == (1.0, 2.0, 1.0, 1.0) and jiangsu.share == 0.4
    assert (sichuan.share, sichuan.quota, sichuan.multiplier[2]) == (0.3, 0.25, 3.0)
    assert guangdong.quota == 0.5
    assert sc.quotas.push == 3.0 and sc.entry == 0.1


def test_an_override_by_digits_that_are_a_name_and_an_index_is_refused(tmp_path):
    """`population.segment.1` where segment 0 is named "1": before, index 1 was taken
    silently, changing the other segment. Now refused naming both readings; digits that are
    a name and no other entry's index mean the name."""
    raw = base_raw()
    raw["population"]["segment"][0]["name"] = "1"  # ("large"), and segment 1 is "sme"
    raw["policy"] = []  # (it names "sme")
    path = tmp_path / "s.toml"
    path.write_text(dumps(raw), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path, ["population.segment.1.propensity=3.0"])
    assert len(info.value.problems) == 1
    assert ("'1' is the name of entry 0 and the index of entry 1; write 0 or 'sme' instead"
            in info.value.problems[0]), info.value.problems
    assert load(path, ["population.segment.0.propensity=3.0"]).segments[0].propensity[0] == 3.0
    raw["population"]["segment"][1]["name"] = "7"
    path.write_text(dumps(raw), encoding="utf-8")
    sc = load(path, ["population.segment.7.propensity=3.0"])
    assert sc.segments[1].propensity[0] == 3.0 and sc.segments[0].propensity[0] == 2.0
    # Swapped digit names: no form names either entry, so the message suggests none.
    raw["population"]["segment"][1]["name"] = "0"
    path.write_text(dumps(raw), encoding="utf-8")
    with pytest.raises(ScenarioError, match="rename one of them"):
        load(path, ["population.segment.0.propensity=3.0"])


def test_an_override_naming_no_region_is_refused(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(dumps(regional_raw()), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path, ["population.region.Hubei.quota=0.2"])
    assert len(info.value.problems) == 1
    assert "no entry named 'Hubei'" in info.value.problems[0]
    with pytest.raises(ScenarioError) as info:
        load(path, ["population.region.Jiangsu.quota=0"])
    assert info.value.problems == [f"{path}: {REG}.Jiangsu.quota = 0: must be a number in "
                                   "(0, 1]"]


def test_the_sweep_table_varies_region_quota_and_turnover_keys():
    vary = {"population.region.Jiangsu.multiplier.line": [1.0, 2.0],
            "population.region.Sichuan.multiplier": [0.5, 1.5],  # absent: default 1
            "population.region.Sichuan.quota": [0.1, 0.2],  # absent: no quota
            "population.region.Jiangsu.share": [0.45, 0.55],
            "population.quotas.push": [1.0, 3.0], "population.quotas.every": [1, 12],
            "population.entry": [0.0, 0.1], "population.exit": [0.0, 0.05],
            "population.entry_device": [0.0, 1.0]}
    raw = _with(sweep={"design": "lhs", "samples": 4, "vary": vary})
    sc = validate(raw, source="r.toml")
    assert sc.sweep is not None and [v[0] for v in sc.sweep.vary] == list(vary)
    base = validate(_with(population__quotas=None), source="r.toml")
    assert base.quotas == Quotas()  # quotas.push may be varied without the table set


@pytest.mark.parametrize("key", ["population.region.Hubei.quota",
                                 "population.region.Guangdong.multiplier.line",  # one number
                                 "population.region.Jiangsu.name",
                                 "population.quotas.pushh", "population.entries"])
def test_the_sweep_table_refuses_keys_that_are_not_numbers_of_the_scenario(key):
    problems = _problems(_with(sweep={"vary": {key: [0.1, 0.2]}}))
    assert len(problems) == 1 and "is not a key of this scenario" in problems[0], problems


def test_sweep_ranges_over_region_keys_are_checked_at_both_bounds():
    ranges = resolve_ranges(regional_raw(), [("population.region.Jiangsu.quota", 0.2, 0.8,
                                              False),
                                             ("population.quotas.every", 1, 12, False)],
                            source="r.toml")
    assert [r.key for r in ranges] == ["population.region.Jiangsu.quota",
                                       "population.quotas.every"]
    assert ranges[1].integer and not ranges[0].integer
    with pytest.raises(Exception) as info:
        resolve_ranges(regional_raw(), [("population.region.Jiangsu.quota", 0.0, 0.5, False)],
                       source="r.toml")
    assert "population.region.Jiangsu.quota" in str(info.value)


# ---------------------------------------------------------------------------------------------
# The key reference and the template


def test_the_schema_declares_the_new_keys_once():
    paths = [k.path for k in schema.KEYS]
    new = ["population.region", "population.region[].name", "population.region[].share",
           "population.region[].multiplier", "population.region[].quota", "population.quotas",
           "population.quotas.push", "population.quotas.every", "population.entry",
           "population.exit", "population.entry_device", "policy[].regions"]
    assert all(paths.count(p) == 1 for p in new)
    quota = next(k for k in schema.KEYS if k.path == "population.region[].quota")
    assert quota.allowed == "(0, 1]"
    props = schema.json_schema()["properties"]["population"]["properties"]
    assert props["region"]["items"]["properties"]["quota"]["exclusiveMinimum"] == 0
    assert props["quotas"]["properties"]["every"] == {
        "description": "time between reviews of the regions against their quotas (months)",
        "type": "integer", "minimum": 1, "maximum": 24, "default": 3}


def test_sim_keys_finds_region_keys_by_a_region_name(capsys):
    assert main(["keys", "population.region.Jiangsu.qu"]) == 0
    body = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[2:] if ln.strip()]
    assert body == ["population.region[].quota"]


def _template_block() -> str:
    """scenarios/template.toml with its optional regions block uncommented."""
    text = (ROOT / "scenarios" / "template.toml").read_text(encoding="utf-8")
    head, rest = text.split("# --- Optional: regions", 1)
    block, tail = rest.split("# --- end of the optional block", 1)
    keep = [ln[2:] for ln in block.splitlines() if re.match(r"# (\[|\w+ = )", ln)]
    return head + "\n".join(keep) + "\n" + tail


def test_the_templates_commented_block_validates_when_uncommented(tmp_path):
    template = load(ROOT / "scenarios" / "template.toml")
    assert template.regions == () and template.entry == 0.0
    path = tmp_path / "template.toml"
    path.write_text(_template_block(), encoding="utf-8")
    sc = load(path)
    assert sc.region_names == ("east", "west")
    assert [r.quota for r in sc.regions] == [0.7, 0.3]
    assert sc.quotas == Quotas(push=1.5, every=3)
    assert (sc.entry, sc.exit, sc.entry_device) == (0.02, 0.01, 0.3)
