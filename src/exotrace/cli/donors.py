"""``exotrace donor`` and ``exotrace consent``: donors and their consents."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from ._common import JsonOption, emit
from ._records import UserOption, parse_date, records_session

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    donor = typer.Typer(help="Pseudonymous donors.", no_args_is_help=True)
    consent = typer.Typer(help="Donor consent and its withdrawal.", no_args_is_help=True)
    app.add_typer(donor, name="donor")
    app.add_typer(consent, name="consent")

    @donor.command("add")
    def add(
        code: Annotated[str, typer.Argument(help="Pseudonymous donor code.")],
        age_band: Annotated[str, typer.Option("--age-band", help="e.g. 30-39 or 80+.")],
        sex: Annotated[str, typer.Option("--sex", help="female, male, other, unknown.")],
        exposures: Annotated[str | None, typer.Option("--exposures")] = None,
        disease: Annotated[str | None, typer.Option("--disease",
                                                    help="Relevant disease history.")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record a donor."""
        from ..records import add_donor, donor_view

        with records_session(user) as (session, acting):
            d = add_donor(session, acting, code, age_band=age_band, sex=sex,
                          exposures=exposures, disease_history=disease)
            result = donor_view(session, d)
        emit(result, as_json=as_json)

    @donor.command("list")
    def list_(as_json: JsonOption = False) -> None:
        """List donors with their current consent."""
        from ..records import Donor, donor_view, repositories

        with records_session(None, write=False) as (session, _):
            rows = [donor_view(session, d)
                    for d in repositories.list_all(session, Donor, order_by=Donor.code)]
        if as_json:
            emit(rows, as_json=True)
            return
        emit([{"code": r["code"], "age_band": r["age_band"], "sex": r["sex"],
               "consent": ("withdrawn" if r["consent"] and r["consent"]["withdrawn"] else
                           ", ".join(r["consent"]["scopes"]) if r["consent"] else "none")}
              for r in rows], as_json=False)

    @donor.command("show")
    def show(code: str, as_json: JsonOption = False) -> None:
        """Show a donor, all consents and the cell banks from the donor."""
        from ..records import CellBank, Donor, donor_view, repositories

        with records_session(None, write=False) as (session, _):
            d = repositories.get_by(session, Donor, code=code)
            result = donor_view(session, d, detail=True)
            result["cell_banks"] = [b.code for b in repositories.list_all(session, CellBank)
                                    if b.donor_id == d.id]
        emit(result, as_json=as_json)

    @consent.command("add")
    def consent_add(
        donor_code: Annotated[str, typer.Argument(metavar="DONOR")],
        scope: Annotated[list[str], typer.Option(
            "--scope", help="research, clinical_manufacturing, cosmetic, commercial (repeat).")],
        version: Annotated[str, typer.Option("--version", help="Consent form version.")],
        on: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default today).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record a donor's consent (it becomes the current one)."""
        from ..records import add_consent, consent_view

        with records_session(user) as (session, acting):
            c = add_consent(session, acting, donor_code, scopes=scope, version=version,
                            consented_on=parse_date(on, "--date") or date.today())
            result = consent_view(c)
        emit(result, as_json=as_json)

    @consent.command("withdraw")
    def consent_withdraw(
        donor_code: Annotated[str, typer.Argument(metavar="DONOR")],
        reason: Annotated[str, typer.Option("--reason", help="Why consent was withdrawn.")],
        on: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default today).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Withdraw the donor's current consent: blocks every later use of the material."""
        from ..records import consent_view, withdraw_consent

        with records_session(user) as (session, acting):
            c = withdraw_consent(session, acting, donor_code,
                                 withdrawn_on=parse_date(on, "--date") or date.today(),
                                 reason=reason)
            result = consent_view(c)
        emit(result, as_json=as_json)
