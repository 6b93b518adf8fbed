"""Traceability forward and back through cell-bank lineage, pools and splits."""

from datetime import date

import pytest

from conftest import build_chain
from exotrace.errors import InvalidInput, NotFound
from exotrace.records import (
    _trace,
    add_cell_bank,
    add_collection,
    add_isolation_run,
    create_lot,
    create_vials,
    pool_lots,
    register_forward_extension,
    split_lot,
    trace_back,
    trace_forward,
    withdraw_consent,
)


@pytest.fixture
def graph(session, record_users):
    """D-A and D-B lots pooled, the pool split; D-C unrelated; a working bank from D-A's."""
    an = record_users["analyst"]
    a = build_chain(session, record_users, donor="D-A")
    b = build_chain(session, record_users, donor="D-B")
    c = build_chain(session, record_users, donor="D-C")
    pool_lots(session, an, "POOL", parents={a["lot"].number: 5.0, b["lot"].number: 5.0},
              manufactured_on=date(2025, 4, 1))
    split_lot(session, an, "POOL", children={"POOL-S1": 4.0, "POOL-S2": 4.0},
              manufactured_on=date(2025, 4, 2))
    wb = add_cell_bank(session, an, "WCB-A", donor_code="D-A", tissue="umbilical_cord",
                       passage=6, intended_use="clinical_manufacturing",
                       parent_code=a["bank"].code)
    add_collection(session, an, "COL-WA", cell_bank_code=wb.code, medium="MEM",
                   serum_condition="ev_depleted_serum", volume_ml=200, culture_days=2)
    add_isolation_run(session, an, "ISO-WA", collection_code="COL-WA", method="tangential_flow_filtration",
                      input_volume_ml=200, output_volume_ml=5)
    create_lot(session, an, "L-WA", isolation_code="ISO-WA",
               intended_use="clinical_manufacturing", manufactured_on=date(2025, 4, 3))
    vials = {n: create_vials(session, an, n, 2) for n in
             ("L-D-A-1", "L-D-B-1", "L-D-C-1", "POOL", "POOL-S1", "POOL-S2", "L-WA")}
    return {"a": a, "b": b, "c": c, "vials": vials}


def test_forward_from_donor_follows_pools_splits_and_bank_lineage(session, graph):
    fwd = trace_forward(session, donor_code="D-A")
    assert [x["number"] for x in fwd["lots"]] == ["L-D-A-1", "L-WA", "POOL", "POOL-S1", "POOL-S2"]
    expected = {i for n in ("L-D-A-1", "L-WA", "POOL", "POOL-S1", "POOL-S2")
                for i in graph["vials"][n]}
    assert {v["identifier"] for v in fwd["vials"]} == expected
    assert fwd["subjects"] == []


def test_forward_from_other_sources(session, graph):
    assert [x["number"] for x in trace_forward(session, donor_code="D-C")["lots"]] == ["L-D-C-1"]
    by_lot = trace_forward(session, lot_number="POOL-S1")
    assert [x["number"] for x in by_lot["lots"]] == ["POOL-S1"]
    assert len(by_lot["vials"]) == 2
    by_bank = trace_forward(session, cell_bank_code=graph["b"]["bank"].code)
    assert [x["number"] for x in by_bank["lots"]] == ["L-D-B-1", "POOL", "POOL-S1", "POOL-S2"]
    by_reagent = trace_forward(session, reagent_code=graph["c"]["reagent"].code)
    assert [x["number"] for x in by_reagent["lots"]] == ["L-D-C-1"]
    with pytest.raises(InvalidInput, match="exactly one"):
        trace_forward(session, donor_code="D-A", lot_number="POOL")
    with pytest.raises(NotFound, match="no donor with code 'D-Z'"):
        trace_forward(session, donor_code="D-Z")


def test_back_from_split_of_pool_reaches_both_donors(session, graph, record_users):
    vial = graph["vials"]["POOL-S2"][1]
    back = trace_back(session, vial)
    assert back["vial"]["lot"] == "POOL-S2"
    assert [x["number"] for x in back["lots"]] == ["L-D-A-1", "L-D-B-1", "POOL", "POOL-S2"]
    assert sorted((x["parent"], x["child"], x["kind"]) for x in back["links"]) == [
        ("L-D-A-1", "POOL", "pool"), ("L-D-B-1", "POOL", "pool"), ("POOL", "POOL-S2", "split")]
    assert [x["code"] for x in back["isolation_runs"]] == ["ISO-D-A-1", "ISO-D-B-1"]
    assert [d["code"] for d in back["donors"]] == ["D-A", "D-B"]
    assert back["donor"]["code"] == "D-A"
    assert back["consent"]["version"] == "v2.1" and back["consent"]["withdrawn"] is False
    withdraw_consent(session, record_users["analyst"], "D-B", withdrawn_on=date(2025, 9, 1),
                     reason="letter")
    again = trace_back(session, vial)
    assert again["donors"][1]["consent"]["withdrawn_on"] == "2025-09-01"


def test_back_through_working_bank_to_master(session, graph):
    back = trace_back(session, graph["vials"]["L-WA"][0])
    assert sorted(b["code"] for b in back["cell_banks"]) == ["CB-D-A-1", "WCB-A"]
    assert back["donor"]["code"] == "D-A"
    with pytest.raises(NotFound, match="no vial"):
        trace_back(session, "NOPE0000X")


def test_forward_extension_point(session, graph, monkeypatch):
    monkeypatch.setattr(_trace, "_FORWARD_EXTENSIONS", {})
    register_forward_extension("subjects", lambda s, lots, vials: [{"n_vials": len(vials)}])
    assert trace_forward(session, donor_code="D-C")["subjects"] == [{"n_vials": 2}]


def test_forward_trace_pauses_the_collector_only_while_it_builds(session, graph, monkeypatch):
    import gc

    seen = []
    monkeypatch.setattr(_trace, "_FORWARD_EXTENSIONS", {})
    register_forward_extension("subjects", lambda s, lots, vials: seen.append(gc.isenabled())
                               or [])
    assert gc.isenabled()
    trace_forward(session, donor_code="D-C")
    assert seen == [False] and gc.isenabled()  # paused inside, running again after

    def fails(s, lots, vials):
        raise RuntimeError("extension failed")

    register_forward_extension("subjects", fails)
    with pytest.raises(RuntimeError):
        trace_forward(session, donor_code="D-C")
    assert gc.isenabled()  # an error does not leave it paused
    gc.disable()
    try:  # a caller that paused it keeps it paused
        register_forward_extension("subjects", lambda s, lots, vials: [])
        trace_forward(session, donor_code="D-C")
        assert not gc.isenabled()
    finally:
        gc.enable()
