"""The local accounting spool: where records go while the database is unreachable.

The file is append-only, one JSON object per line. The first line is a header
naming the spool (a random id); every other line is ``{"seq": n, "record":
{...}}`` with n counting up from 1. A record is acknowledged to the NAS only
after its line is written and ``fsync``'ed, so a crash or power loss after the
Accounting-Response cannot lose it. A line cut short by a crash was never
acknowledged; it is trimmed when the file is opened.

Replay is exactly-once: the number of the last line applied is stored in
``acct_spool_position`` in the same transaction as the line's record
(:func:`thd_replay_chunk`), so a crash halfway through replay resumes after
the last committed line, never before or after it. When every line is in the
database the file is replaced by an empty one with a new id (write to a
temporary file, fsync, rename, fsync the directory).

All file work runs in one dedicated thread (:class:`AsyncSpool`), never on
the reactor: an fsync can take milliseconds.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from accounting.errors import SpoolCorrupt, SpoolError
from accounting.models import AcctSpoolPosition
from accounting.records import AcctRecord
from accounting.store import AcctPolicy, thd_apply_records
from billing.usage import UsageSink
from core.db.base import utcnow

log = logging.getLogger(__name__)

SPOOL_KIND = "radbill-accounting-spool"
SPOOL_VERSION = 1

Entry = tuple[int, AcctRecord]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolFile:
    """The spool file itself; synchronous, used from one thread at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self.spool_id = ""
        self.last_seq = 0
        self._fh: Any = None
        # Where the next read starts: (seq of the last line before it, byte offset).
        self._cursor: tuple[int, int] = (0, 0)
        self._header_end = 0

    # -- open / rotate ---------------------------------------------------------------

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists() or self.path.stat().st_size == 0:
                self._write_fresh()
            else:
                self._scan()
            self._fh = self.path.open("ab", buffering=0)
        except OSError as exc:
            raise SpoolError(f"cannot open accounting spool {self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _header(self) -> bytes:
        return (json.dumps({"spool": SPOOL_KIND, "version": SPOOL_VERSION,
                            "id": self.spool_id, "created": utcnow().isoformat()})
                + "\n").encode()

    def _write_fresh(self) -> None:
        self.spool_id = str(uuid.uuid4())
        header = self._header()
        tmp = self.path.with_name(self.path.name + ".new")
        with tmp.open("wb") as fh:
            fh.write(header)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self.last_seq = 0
        self._header_end = len(header)
        self._cursor = (0, self._header_end)

    def _scan(self) -> None:
        """Read the header, find the last sequence number, trim a torn last line."""
        with self.path.open("rb+") as fh:
            header_line = fh.readline()
            try:
                header = json.loads(header_line)
                if header.get("spool") != SPOOL_KIND or not header.get("id"):
                    raise ValueError("not a radbill spool header")
            except ValueError:
                raise SpoolCorrupt(f"{self.path} is not a radbill accounting spool "
                                   f"(first line: {header_line[:80]!r})") from None
            self.spool_id = str(header["id"])
            self._header_end = fh.tell()
            good_end = self._header_end
            last = 0
            while True:
                line = fh.readline()
                if not line:
                    break
                if not line.endswith(b"\n"):
                    log.warning("accounting spool %s: trimming %d bytes of a line cut short "
                                "by a crash (never acknowledged)", self.path, len(line))
                    break
                good_end = fh.tell()
                seq = _line_seq(line)
                if seq is not None:
                    last = max(last, seq)
            if good_end < self.path.stat().st_size:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())
        self.last_seq = last
        self._cursor = (0, self._header_end)

    def rotate(self) -> str:
        """Start an empty spool with a new id; the old id's position row becomes moot."""
        self.close()
        self._write_fresh()
        self._fh = self.path.open("ab", buffering=0)
        return self.spool_id

    # -- append / read ------------------------------------------------------------------

    def append(self, records: Sequence[AcctRecord]) -> list[int]:
        """Write and fsync records; their sequence numbers once they are on disk."""
        if self._fh is None:
            raise SpoolError(f"accounting spool {self.path} is not open")
        seqs = list(range(self.last_seq + 1, self.last_seq + 1 + len(records)))
        data = "".join(json.dumps({"seq": seq, "record": rec.to_json()}, separators=(",", ":"))
                       + "\n" for seq, rec in zip(seqs, records, strict=True)).encode()
        size = os.fstat(self._fh.fileno()).st_size
        try:
            self._fh.write(data)
            os.fsync(self._fh.fileno())
        except OSError as exc:
            # Leave no half line behind for the records that will not be acknowledged.
            try:
                os.ftruncate(self._fh.fileno(), size)
            except OSError:
                pass
            raise SpoolError(f"cannot write accounting spool {self.path}: {exc.strerror}"
                             ) from exc
        self.last_seq = seqs[-1] if seqs else self.last_seq
        return seqs

    def read_after(self, seq: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries with a sequence number above ``seq``, in file order."""
        start_seq, offset = self._cursor
        if seq < start_seq:
            offset = self._header_end
        out: list[Entry] = []
        with self.path.open("rb") as fh:
            fh.seek(offset)
            while len(out) < limit:
                line_start = fh.tell()
                line = fh.readline()
                if not line or not line.endswith(b"\n"):
                    break
                entry = self._parse(line)
                if entry is None:
                    continue
                if entry[0] <= seq:
                    self._cursor = (entry[0], fh.tell())
                    continue
                out.append(entry)
                if len(out) == 1:
                    self._cursor = (seq, line_start)
        return out

    def _parse(self, line: bytes) -> Entry | None:
        try:
            data = json.loads(line)
            return int(data["seq"]), AcctRecord.from_json(data["record"])
        except (ValueError, KeyError, TypeError) as exc:
            log.error("accounting spool %s: unreadable line set aside in %s: %s", self.path,
                      self.rejected_path, exc)
            self.reject_raw(line)
            return None

    def reject_raw(self, line: bytes) -> None:
        try:
            with self.rejected_path.open("ab") as fh:
                fh.write(line if line.endswith(b"\n") else line + b"\n")
                os.fsync(fh.fileno())
        except OSError as exc:
            log.error("cannot write %s: %s", self.rejected_path, exc.strerror)

    def reject(self, seq: int, record: AcctRecord, reason: str) -> None:
        line = json.dumps({"seq": seq, "spool": self.spool_id, "reason": reason,
                           "record": record.to_json()}, separators=(",", ":"))
        self.reject_raw(line.encode())


def _line_seq(line: bytes) -> int | None:
    try:
        return int(json.loads(line)["seq"])
    except (ValueError, KeyError, TypeError):
        return None


class AsyncSpool:
    """The spool seen from the reactor: every file operation in one dedicated thread,
    so appends land in the order they were asked for."""

    def __init__(self, path: str | Path, reactor: Any) -> None:
        self.file = SpoolFile(path)
        self.reactor = reactor
        self.threadpool = ThreadPool(minthreads=1, maxthreads=1, name="radbill-spool")
        self._opened = False
        self.appended_seq = 0  # as seen by the reactor: acknowledged lines
        self.appends_in_flight = 0

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def spool_id(self) -> str:
        return self.file.spool_id

    def open(self) -> None:
        """Open (or recover) the file and start the thread; synchronous, at startup."""
        if self._opened:
            return
        self.file.open()
        self.appended_seq = self.file.last_seq
        self.threadpool.start()
        self._opened = True

    def close(self) -> None:
        if self._opened:
            self.threadpool.stop()
            self.file.close()
            self._opened = False

    def _run(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        if not self._opened:
            self.open()
        return deferToThreadPool(self.reactor, self.threadpool, fn, *args)

    def append(self, records: Sequence[AcctRecord]) -> defer.Deferred[list[int]]:
        self.appends_in_flight += 1

        def done(seqs: list[int]) -> list[int]:
            self.appends_in_flight -= 1
            if seqs:
                self.appended_seq = max(self.appended_seq, seqs[-1])
            return seqs

        def failed(f: Any) -> Any:
            self.appends_in_flight -= 1
            return f

        return self._run(self.file.append, list(records)).addCallbacks(done, failed)

    def read_after(self, seq: int, limit: int) -> defer.Deferred[list[Entry]]:
        return self._run(self.file.read_after, seq, limit)

    def reject(self, seq: int, record: AcctRecord, reason: str) -> defer.Deferred[None]:
        return self._run(self.file.reject, seq, record, reason)

    def rotate(self) -> defer.Deferred[str]:
        def rotated(spool_id: str) -> str:
            self.appended_seq = 0
            return spool_id

        return self._run(self.file.rotate).addCallback(rotated)


# -- replay transactions -------------------------------------------------------------


@dataclass(frozen=True)
class ReplayProgress:
    last_seq: int
    applied: int


def thd_spool_position(session: Session, spool_id: str) -> int:
    row = session.get(AcctSpoolPosition, spool_id)
    return int(row.last_seq) if row is not None else 0


def _set_position(session: Session, spool_id: str, seq: int) -> None:
    table: Any = AcctSpoolPosition.__table__
    values = {"spool_id": spool_id, "last_seq": seq, "updated_at": utcnow()}
    stmt: Any
    if session.get_bind().dialect.name == "mysql":
        stmt = mysql.insert(table).values(**values)
        stmt = stmt.on_duplicate_key_update(last_seq=stmt.inserted.last_seq,
                                            updated_at=stmt.inserted.updated_at)
    else:
        stmt = sqlite.insert(table).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=["spool_id"],
                                          set_={"last_seq": stmt.excluded.last_seq,
                                                "updated_at": stmt.excluded.updated_at})
    session.execute(stmt)


def thd_replay_chunk(session: Session, spool_id: str, entries: Sequence[Entry],
                     policy: AcctPolicy, usage_sink: UsageSink | None = None) -> ReplayProgress:
    """Apply the entries not yet applied and move the position, in one transaction."""
    row = session.execute(select(AcctSpoolPosition).where(AcctSpoolPosition.spool_id == spool_id)
                          .with_for_update()).scalar_one_or_none()
    done = int(row.last_seq) if row is not None else 0
    todo = [(seq, rec) for seq, rec in entries if seq > done]
    if not todo:
        return ReplayProgress(done, 0)
    thd_apply_records(session, [rec for _, rec in todo], policy, usage_sink)
    last = todo[-1][0]
    _set_position(session, spool_id, last)
    return ReplayProgress(last, len(todo))


def thd_skip_entry(session: Session, spool_id: str, seq: int) -> ReplayProgress:
    """Move past one entry the database refuses on its own (it was set aside)."""
    done = thd_spool_position(session, spool_id)
    if seq > done:
        _set_position(session, spool_id, seq)
        return ReplayProgress(seq, 0)
    return ReplayProgress(done, 0)
