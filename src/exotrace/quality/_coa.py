"""Certificate of analysis (CoA): one Jinja2 template for the web view and the PDF.

The certificate carries what ICH Q7 11.4 and WHO TRS 1010 Annex 4 list:
product, lot number, manufacturer, dates of manufacture, release and expiry,
every test with its method, acceptance criterion and result, the
specification name and version, a statement of compliance, the quality-unit
signature manifestation (printed name, UTC date/time, meaning; 21 CFR 11.50),
a unique CoA id and "page x of y".

Reproducible: the CoA id is a hash of the lot, the specification version and
the signature, and the PDF's metadata dates and file identifier are derived
from the data, so the same input gives byte-identical HTML and PDF.

References
----------
.. [1] ICH Q7, *Good Manufacturing Practice Guide for Active Pharmaceutical
   Ingredients*, section 11.4 (certificates of analysis).
.. [2] WHO Technical Report Series 1010 (2018), Annex 4, *Model certificate of analysis*.
.. [3] 21 CFR 11.50, signature manifestations.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2

from ..errors import InvalidInput
from ._evaluate import Conclusion, Evaluation, Outcome

__all__ = [
    "CertificateData",
    "CoaRow",
    "SignatureManifest",
    "certificate_from_evaluation",
    "coa_stylesheet",
    "render_coa_html",
    "render_coa_pdf",
]


@dataclass(frozen=True)
class SignatureManifest:
    """Printed manifestation of an electronic signature (21 CFR 11.50).

    Attributes
    ----------
    printed_name : str
        Full printed name of the signer.
    signed_at : datetime.datetime
        Time of signing; must be timezone-aware (converted to UTC).
    meaning : str
        Meaning of the signature, e.g. ``"approval: lot release"``.
    """

    printed_name: str
    signed_at: datetime
    meaning: str

    def __post_init__(self) -> None:
        if self.signed_at.tzinfo is None:
            raise InvalidInput("signature time must be timezone-aware")
        if not self.printed_name.strip() or not self.meaning.strip():
            raise InvalidInput("a signature needs a printed name and a meaning")

    @property
    def signed_at_utc(self) -> datetime:
        """Signing time in UTC, to the second."""
        return self.signed_at.astimezone(UTC).replace(microsecond=0)

    @property
    def signed_at_iso(self) -> str:
        """ISO 8601 UTC time (``2026-03-01T09:30:00Z``)."""
        return self.signed_at_utc.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def signed_at_text(self) -> str:
        """Human-readable UTC time."""
        return self.signed_at_utc.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class CoaRow:
    """One test line of a CoA (all text, as printed)."""

    test: str
    method: str
    criterion: str
    result: str
    conclusion: str

    @property
    def css_class(self) -> str:
        """``pass``/``fail``/``""`` for styling."""
        return {"complies": "pass", "does not comply": "fail"}.get(self.conclusion, "")


@dataclass(frozen=True)
class CertificateData:
    """Everything printed on a certificate of analysis.

    Attributes
    ----------
    product_name, lot_number, manufacturer : str
        Identification.
    manufacture_date, release_date, expiry_date : datetime.date
        Dates printed on the certificate.
    specification_name, specification_version : str
        Specification judged against.
    rows : list of CoaRow
        Test lines in specification order.
    complies : bool
        Whether the lot complies (drives the statement).
    signature : SignatureManifest
        Quality-unit signature.
    manufacturer_address, storage : str
        Optional lines.
    """

    product_name: str
    lot_number: str
    manufacturer: str
    manufacture_date: date
    release_date: date
    expiry_date: date
    specification_name: str
    specification_version: str
    rows: list[CoaRow]
    complies: bool
    signature: SignatureManifest
    manufacturer_address: str = ""
    storage: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.rows:
            raise InvalidInput("a certificate of analysis needs at least one test")
        if self.expiry_date < self.manufacture_date:
            raise InvalidInput("expiry date is before the manufacture date")

    @property
    def coa_id(self) -> str:
        """Unique, deterministic id: hash of lot, specification version and signature."""
        key = "|".join([self.lot_number, self.specification_name, self.specification_version,
                        self.signature.printed_name, self.signature.signed_at_iso,
                        self.signature.meaning])
        h = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16].upper()
        return "COA-" + "-".join(h[i:i + 4] for i in range(0, 16, 4))

    @property
    def compliance_statement(self) -> str:
        """Statement of compliance printed on the certificate."""
        spec = f"specification {self.specification_name}, version {self.specification_version}"
        if self.complies:
            return f"Lot {self.lot_number} complies with {spec}."
        return f"Lot {self.lot_number} does NOT comply with {spec}."


def certificate_from_evaluation(evaluation: Evaluation, *, product_name: str, lot_number: str,
                                manufacturer: str, manufacture_date: date, release_date: date,
                                expiry_date: date, signature: SignatureManifest,
                                manufacturer_address: str = "",
                                storage: str = "") -> CertificateData:
    """Build the certificate data from an evaluation.

    Raises
    ------
    InvalidInput
        If the evaluation is incomplete (a CoA lists every test's result).
    """
    if evaluation.conclusion == Conclusion.INCOMPLETE:
        raise InvalidInput("evaluation is incomplete; a certificate needs every result")
    words = {Outcome.PASS: "complies", Outcome.FAIL: "does not comply",
             Outcome.REPORT_ONLY: "reported", Outcome.MISSING: "not tested"}
    rows = []
    for o in evaluation.outcomes:
        word = words[o.outcome]
        if o.outcome == Outcome.FAIL and o.alternative_group and \
                evaluation.groups.get(o.alternative_group) == Outcome.PASS:
            word = "alternative met"
        if o.outcome == Outcome.MISSING and o.alternative_group and \
                evaluation.groups.get(o.alternative_group) == Outcome.PASS:
            word = "alternative met"
        rows.append(CoaRow(o.test, o.method, o.criterion, o.result_text or "-", word))
    return CertificateData(
        product_name=product_name, lot_number=lot_number, manufacturer=manufacturer,
        manufacture_date=manufacture_date, release_date=release_date, expiry_date=expiry_date,
        specification_name=evaluation.specification_name,
        specification_version=evaluation.specification_version, rows=rows,
        complies=evaluation.conclusion == Conclusion.COMPLIES, signature=signature,
        manufacturer_address=manufacturer_address, storage=storage)


def _read(name: str) -> str:
    return (resources.files("exotrace.quality") / "templates" / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.from_string(_read("coa.html"))


def coa_stylesheet() -> str:
    """The CoA stylesheet (screen and paged media)."""
    return _read("coa.css")


def render_coa_html(coa: CertificateData) -> str:
    """Render the certificate as a standalone HTML page (the web view and the PDF source).

    Parameters
    ----------
    coa : CertificateData

    Returns
    -------
    str
        HTML with the stylesheet inlined; identical for identical input.
    """
    return _template().render(c=coa, css=jinja2.utils.markupsafe.Markup(coa_stylesheet()))


def render_coa_pdf(coa: CertificateData, path: str | Path | None = None) -> bytes:
    """Render the certificate as PDF with WeasyPrint from :func:`render_coa_html`.

    Parameters
    ----------
    coa : CertificateData
    path : str or Path, optional
        Where to write the PDF; the bytes are returned either way.

    Returns
    -------
    bytes
        The PDF. Creation/modification dates come from the signature time and
        the file identifier from the CoA id, so the bytes are reproducible.
    """
    import weasyprint  # heavy import: only when a PDF is wanted

    html = render_coa_html(coa)
    identifier = hashlib.md5(coa.coa_id.encode("ascii")).hexdigest().encode("ascii")
    # fontTools stamps the subset fonts' "head.modified" with the current time
    # unless SOURCE_DATE_EPOCH is set (reproducible-builds convention): pin it to
    # the signature time for the duration of the render, then restore it.
    epoch = str(int(coa.signature.signed_at_utc.timestamp()))
    saved = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = epoch
    # WeasyPrint logs a warning per font when HarfBuzz-Subset is missing; it is
    # harmless here and would clutter command output.
    wp_logger = logging.getLogger("weasyprint")
    saved_level = wp_logger.level
    wp_logger.setLevel(logging.ERROR)
    try:
        pdf = weasyprint.HTML(string=html, base_url=None).write_pdf(pdf_identifier=identifier)
    finally:
        wp_logger.setLevel(saved_level)
        if saved is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = saved
    if path is not None:
        Path(path).write_bytes(pdf)
    return pdf
