"""`exotrace lot pool/split` take or derive the child's expiry (both backends, committed)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from argon2 import PasswordHasher

from _db_fixtures import settle_first_passwords
from exotrace.cli.main import main

_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def cli(fresh_db_url, monkeypatch, capsys):
    from exotrace.records import (
        Role,
        add_cell_bank,
        add_collection,
        add_consent,
        add_donor,
        add_isolation_run,
        add_user,
        create_lot,
        make_engine,
        unit_of_work,
    )

    monkeypatch.setattr("exotrace.records._auth._hasher", _CHEAP)
    engine = make_engine(fresh_db_url)
    with unit_of_work(engine) as s:
        admin = add_user(s, "boss", Role.ADMIN, password_hash=_CHEAP.hash("pass-word-1"))
        ana = add_user(s, "ana", Role.ANALYST, password_hash=_CHEAP.hash("pass-word-1"),
                       acting=admin)
        settle_first_passwords(s, (ana,))
        add_donor(s, ana, "D1", age_band="30-39", sex="female")
        add_consent(s, ana, "D1", scopes=["clinical_manufacturing"], version="v1",
                    consented_on=date(2025, 1, 2))
        add_cell_bank(s, ana, "CB1", donor_code="D1", tissue="adipose", passage=3,
                      intended_use="clinical_manufacturing")
        add_collection(s, ana, "C1", cell_bank_code="CB1", medium="DMEM",
                       serum_condition="serum_free", volume_ml=100, culture_days=2)
        add_isolation_run(s, ana, "I1", collection_code="C1",
                          method="size_exclusion_chromatography", input_volume_ml=100,
                          output_volume_ml=4)
        for number, expires in (("L1", date(2028, 3, 1)), ("L2", date(2027, 9, 30))):
            create_lot(s, ana, number, isolation_code="I1",
                       intended_use="clinical_manufacturing", manufactured_on=date(2025, 2, 1),
                       expires_on=expires, volume_ml=2.0)
    engine.dispose()
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("EXOTRACE_USER", "ana")
    monkeypatch.setenv("EXOTRACE_PASSWORD", "pass-word-1")

    def run(*args):
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_pool_from_the_cli_gets_its_earliest_parents_expiry(cli):
    code, out, err = cli("lot", "pool", "P1", "--parent", "L1=1", "--parent", "L2=1", "--json")
    assert code == 0, err
    assert json.loads(out)["expires_on"] == "2027-09-30"
    code, _, err = cli("lot", "pool", "P2", "--parent", "L1=0.5", "--parent", "L2=0.5",
                       "--expires", "2027-10-01")
    assert code == 9 and "after its earliest parent's (2027-09-30)" in err
    assert err.count("\n") == 1
    code, out, err = cli("lot", "split", "P1", "--child", "P1-A=1", "--expires", "2027-06-30",
                         "--json")
    assert code == 0, err
    assert [x["expires_on"] for x in json.loads(out)] == ["2027-06-30"]
