"""Store batch results as measurements on their lots, once per video and settings.

A result is stored as a :class:`~exotrace.records.ResultFile` plus one
:class:`~exotrace.records.Measurement` per value (concentration, mode, mean,
D10/D50/D90, SD), like ``exotrace measurement import``. The
``ResultFile`` is keyed on (lot, :func:`batch_key`), a SHA-256 of the video's
SHA-256 and the settings' SHA-256, so the table's unique (lot, sha256)
constraint makes storing idempotent: a rerun, or the same video analysed
with the same settings again, adds nothing; other settings add a new
result. The measurements carry the video's own SHA-256 as their source.

Like the records services, these functions never commit: the caller opens
one unit of work per video (:class:`LotStore` does).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import ExotraceError, InsufficientData

__all__ = ["RESULT_FORMAT", "LotStore", "batch_key", "instrument_record", "store_result"]

RESULT_FORMAT = "exotrace-nta"
_INSTRUMENT = "exotrace NTA"


def batch_key(video_sha256: str, settings_sha256: str) -> str:
    """SHA-256 identifying one video analysed with one set of settings."""
    return hashlib.sha256(f"nta-batch\0{video_sha256}\0{settings_sha256}".encode()).hexdigest()


def instrument_record(record: dict[str, Any]) -> dict[str, Any]:
    """The result as an ``InstrumentResult.to_dict()`` (what lots store for any instrument).

    ``extra`` carries the number distribution, the detection range (unknown for
    a video: ``None``) and the hashes and settings that identify the analysis.
    """
    from ..instruments import InstrumentResult

    res = record["result"]
    acq = res.get("acquisition") or {}
    ppm = res.get("particles_per_ml")
    dilution = res.get("dilution") or 1.0
    dist = res.get("distribution") or {}
    extra = {
        "number_distribution": {"diameter_nm": dist.get("diameter_nm", []),
                                "fraction": dist.get("number_fraction", [])},
        "detection_range_nm": None,
        "video_sha256": record["video_sha256"], "settings_sha256": record["settings_sha256"],
        "batch_key": batch_key(record["video_sha256"], record["settings_sha256"]),
        "settings": record["settings"], "n_tracks": res.get("n_tracks"),
        # the measurement method, as every size result on a lot names it
        "method": "NTA", "size_method": res.get("method"),
    }
    result = InstrumentResult(
        file=record["video"], format=RESULT_FORMAT, instrument=_INSTRUMENT,
        sample=record["sample"], temperature_c=acq.get("temperature_c"),
        viscosity_cp=acq.get("viscosity_cp"), dilution_factor=dilution,
        particles_per_ml=ppm, measured_particles_per_ml=None if ppm is None else ppm / dilution,
        mean_nm=res.get("mean_nm"), mode_nm=res.get("mode_nm"), sd_nm=res.get("sd_nm"),
        d10_nm=res.get("d10_nm"), d50_nm=res.get("d50_nm"), d90_nm=res.get("d90_nm"),
        warnings=tuple(res.get("warnings") or ()), extra=extra)
    return result.to_dict(full=False)


def store_result(session, user, record: dict[str, Any]) -> tuple[Any, list, bool]:
    """Store one ``state == "ok"`` batch record on its lot (``record["lot"]``).

    Returns
    -------
    (ResultFile, list of Measurement, created)
        ``created`` is False when this video and settings were stored on the
        lot before: nothing is written again.

    Raises
    ------
    NotFound
        No such lot.
    RuleViolation
        The lot is released or rejected.
    PermissionDenied
        The user may not enter results.
    """
    from ..records import (
        Lot,
        Permission,
        ResultFile,
        acting_as,
        add_measurement,
        measurements_from_result,
        repositories,
        require_permission,
    )

    require_permission(user, Permission.ENTER_RESULTS, action="store batch results")
    lot = repositories.get_by(session, Lot, number=record["lot"])
    key = batch_key(record["video_sha256"], record["settings_sha256"])
    existing = repositories.find_result_file(session, lot.id, key)
    if existing is not None:
        return existing, [], False
    data = instrument_record(record)
    values = measurements_from_result(data)
    if not values:
        raise InsufficientData(f"{record['video']}: the result holds no concentration or size "
                               "value to store")
    name = Path(record["video"]).name[:400]
    rf = ResultFile(lot_id=lot.id, file_name=name, sha256=key,
                    result_json=json.dumps(data, sort_keys=True), imported_by_id=user.id)
    with acting_as(session, user):
        session.add(rf)
        session.flush()
    made = [add_measurement(session, user, lot.number, source_file_name=name,
                            source_sha256=record["video_sha256"], result_file=rf, **v)
            for v in values]
    return rf, made, True


class LotStore:
    """Stores records on lots from the coordinating process, one transaction per video.

    Parameters
    ----------
    url : str
        Database URL.
    username, password : str
        The acting user (authenticated once; must be allowed to enter results).
    """

    def __init__(self, url: str, username: str, password: str) -> None:
        from ..records import (
            Permission,
            authenticate,
            make_engine,
            require_permission,
            unit_of_work,
        )

        self._engine = make_engine(url)
        try:
            with unit_of_work(self._engine) as session:
                user = authenticate(session, username, password)
                require_permission(user, Permission.ENTER_RESULTS, action="store batch results")
                self._user_id = user.id
        except BaseException:
            self._engine.dispose()
            raise

    def check_lots(self, lots: set[str]) -> None:
        """Raise NotFound / RuleViolation before any analysis if a lot cannot take results."""
        from ..errors import RuleViolation
        from ..records import Lot, LotStatus, repositories, unit_of_work

        with unit_of_work(self._engine) as session:
            for number in sorted(lots):
                lot = repositories.get_by(session, Lot, number=number)
                if lot.status in (LotStatus.RELEASED, LotStatus.REJECTED):
                    raise RuleViolation(f"lot {number} is {lot.status.value}; results can no "
                                        "longer be added")

    def store(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store one record in its own transaction; errors are returned, not raised.

        Returns
        -------
        dict
            ``sample``, ``lot``, ``created`` (bool, None on error), ``measurements``
            (how many were written), ``error`` (one line or None).
        """
        import sqlalchemy as sa

        from ..records import User, set_actor, unit_of_work
        from ._task import one_line

        out = {"sample": record["sample"], "lot": record["lot"], "created": None,
               "measurements": 0, "error": None}
        try:
            with unit_of_work(self._engine, check_schema=False) as session:
                user = session.get(User, self._user_id)
                set_actor(session, user)
                _, made, created = store_result(session, user, record)
            out.update(created=created, measurements=len(made))
        except (ExotraceError, sa.exc.SQLAlchemyError) as exc:
            out["error"] = one_line(exc) if isinstance(exc, ExotraceError) else (
                "database: " + " ".join(str(getattr(exc, "orig", exc)).split()))
            return out
        out["checkpoint"] = self._checkpoint_if_due()
        return out

    def _checkpoint_if_due(self) -> str | None:
        """A signed audit checkpoint when one is configured and due (EXOTRACE_CHECKPOINT_*).

        A long batch anchors the chain as it goes; the result is already
        committed, so a checkpoint that cannot be written is reported, not raised.
        """
        from ..records import unit_of_work, write_checkpoint_if_due
        from ._task import one_line

        try:
            with unit_of_work(self._engine, check_schema=False) as session:
                path = write_checkpoint_if_due(session)
        except ExotraceError as exc:
            return f"not written: {one_line(exc)}"
        return None if path is None else str(path)

    def close(self) -> None:
        self._engine.dispose()
