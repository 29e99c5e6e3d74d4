"""The billing loop: one pass rates usage, charges fees, frees dead holds and cuts off.

Every step is its own short transaction through the DB pool and is
idempotent, so a pass killed at any point (a crash, SIGKILL, a lost
database) leaves either the step done or nothing, and the next pass simply
continues: usage deltas are marked rated in the transaction that charges
them (one entry per account per batch, keyed ``usage:<account>:<first delta
id>``), fees carry ``fee:<account>:<period>`` keys,
and cut-off targets are recomputed from the database each time. Disconnect
requests run on the reactor (aaa.coa behind the Disconnector protocol);
their answers are recorded as they come.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from twisted.internet import defer

from billing.cards import thd_expire_vouchers
from billing.charging import DEFAULT_BATCH, PassResult, thd_charge_pending
from billing.cutoff import (
    RESEND_AFTER,
    CutAction,
    CutOutcome,
    CutResult,
    CutTarget,
    Disconnector,
    LiveSessionSource,
    SessionGone,
    thd_block_below_limit,
    thd_cut_targets,
    thd_mark_requested,
    thd_record_result,
    thd_restore_targets,
)
from billing.fees import thd_charge_fees
from billing.notify import thd_low_balance_scan
from billing.reservation import thd_expire_holds
from billing.statements import StatementSettings, closed_period, thd_issue_statements
from core.config import Config
from core.db.base import utcnow
from core.db.pool import DBPool

log = logging.getLogger(__name__)

MAX_BATCHES_PER_PASS = 400


@dataclass
class PassReport:
    rated: int = 0
    charged: int = 0
    entries: int = 0
    fees: int = 0
    expired: int = 0
    vouchers_expired: list[str] = field(default_factory=list)
    statements: int = 0
    low_balance: int = 0
    invoices: int = 0
    documents: int = 0
    blocked: list[int] = field(default_factory=list)
    cuts: list[tuple[str, str, str]] = field(default_factory=list)  # (action, who, outcome)

    def add(self, r: PassResult) -> None:
        self.rated += r.rated
        self.charged += r.charged
        self.entries += r.entries
        self.blocked.extend(r.blocked)

    def as_dict(self) -> dict[str, Any]:
        return {"rated": self.rated, "charged_minor": self.charged,
                "ledger_entries": self.entries + self.fees, "fee_entries": self.fees,
                "holds_released": self.expired, "vouchers_expired": self.vouchers_expired,
                "statements": self.statements, "invoices": self.invoices,
                "documents": self.documents,
                "blocked_accounts": sorted(set(self.blocked)),
                "cut_offs": [{"action": a, "session": w, "result": o} for a, w, o in self.cuts]}


class BillingLoop:
    """One pass at a time of everything billing does on a schedule."""

    def __init__(self, config: Config, dbpool: DBPool, disconnector: Disconnector | None = None,
                 live_sessions: LiveSessionSource | None = None,
                 on_session_gone: SessionGone | None = None, captive: bool = False,
                 batch: int = DEFAULT_BATCH) -> None:
        self.config = config
        self.dbpool = dbpool
        self.disconnector = disconnector
        self.live_sessions = live_sessions
        self.on_session_gone = on_session_gone
        self.captive = captive
        self.batch = batch
        self.statement_settings = StatementSettings.from_config(config)
        self._statements_done: str | None = None  # the period this process finished
        self._renderer: Any = None
        acct = config.accounting
        self.silent_after = timedelta(
            seconds=acct.stale_after_intervals * acct.default_interim_interval + 60)

    @defer.inlineCallbacks
    def run_once(self) -> Generator[Any, Any, PassReport]:
        """Rate, charge fees, release dead holds, block and cut off; returns a PassReport."""
        b = self.config.billing
        report = PassReport()
        for _ in range(MAX_BATCHES_PER_PASS):
            r = yield self.dbpool.run(thd_charge_pending, b.currency, b.reserve_seconds,
                                      b.reserve_octets, self.batch)
            report.add(r)
            if r.rated < self.batch:
                break
        fees = yield self.dbpool.run(thd_charge_fees, b.currency)
        report.fees = fees.entries
        report.blocked.extend(fees.blocked)
        report.expired = yield self.dbpool.run(thd_expire_holds, None, self.silent_after,
                                               self.live_sessions)
        report.blocked.extend((yield self.dbpool.run(thd_block_below_limit)))
        report.vouchers_expired = yield self.dbpool.run(thd_expire_vouchers)
        report.low_balance = yield self.dbpool.run(thd_low_balance_scan)
        if self.config.statements.enabled:
            yield self._issue_statements(report)
            if self.config.statements.render_per_pass:
                yield self._render_documents(report)
        targets = yield self.dbpool.run(thd_cut_targets, self.live_sessions, None,
                                        RESEND_AFTER, self.captive)
        if self.captive:
            targets += (yield self.dbpool.run(thd_restore_targets, self.live_sessions))
        if targets and self.disconnector is not None:
            yield self.dbpool.run(thd_mark_requested, targets)
            yield defer.gatherResults([self._cut(t, report) for t in targets],
                                      consumeErrors=True)
        elif targets:
            log.warning("%d sessions should be cut off but no disconnector is wired",
                        len(targets))
        if report.rated or report.fees or report.cuts or report.blocked or report.statements:
            log.info("billing pass: %s", report.as_dict())
        return report

    @defer.inlineCallbacks
    def _issue_statements(self, report: PassReport) -> Generator[Any, Any, None]:
        """The last closed month's statements, batch by batch, until every account has one."""
        from sqlalchemy.exc import IntegrityError

        period = closed_period(utcnow(), self.statement_settings)
        if self._statements_done == period:
            return
        cursor = 0
        for _ in range(MAX_BATCHES_PER_PASS):
            try:
                r = yield self.dbpool.run(thd_issue_statements, self.statement_settings,
                                          period, cursor)
            except IntegrityError:
                # Another node issued some of this batch at the same moment: its rows are
                # committed, ours rolled back; the next pass continues from the database.
                log.info("statements %s: another node is issuing; continuing next pass",
                         period)
                return
            report.statements += r.statements
            report.invoices += r.invoices
            cursor = r.last_account_id
            if r.done:
                self._statements_done = period
                return

    @defer.inlineCallbacks
    def _render_documents(self, report: PassReport) -> Generator[Any, Any, None]:
        """Render statements that have no document yet (HTML and PDF off the reactor)."""
        from twisted.internet import threads

        from billing.documents import (
            DocumentRenderer,
            thd_document_data,
            thd_pending_statements,
            thd_record_document,
        )

        if self._renderer is None:
            self._renderer = DocumentRenderer(self.config)
        renderer = self._renderer
        pending = yield self.dbpool.run(thd_pending_statements,
                                        self.config.statements.render_per_pass)
        for statement_id in pending:
            try:
                data = yield self.dbpool.run(thd_document_data, statement_id)
                html, pdf = yield threads.deferToThread(renderer.render, data)
                files = yield threads.deferToThread(renderer.write, data, html, pdf)
                doc = yield self.dbpool.run(thd_record_document, data, renderer.title(data),
                                            renderer.kind(data).value, files)
                if doc is None:
                    renderer.discard(files)
                else:
                    report.documents += 1
            except Exception:
                log.exception("rendering statement %d failed; the next pass retries",
                              statement_id)
                return

    @defer.inlineCallbacks
    def _cut(self, target: CutTarget, report: PassReport) -> Generator[Any, Any, CutResult]:
        assert self.disconnector is not None
        try:
            if target.action is CutAction.DISCONNECT:
                result = yield self.disconnector.disconnect(target.session)
            else:
                result = yield self.disconnector.change(target.session, target.action,
                                                        target.rate_limit)
        except Exception as exc:  # a bug or a socket error must not stop the other cut-offs
            log.exception("cut-off of %s failed", target.session.user_name)
            result = CutResult(CutOutcome.NO_ROUTE, detail=str(exc))
        report.cuts.append((target.action.value, target.session.user_name,
                            result.outcome.value))
        yield self.dbpool.run(thd_record_result, target, result)
        if result.outcome is CutOutcome.GONE and self.on_session_gone is not None:
            try:
                yield defer.maybeDeferred(self.on_session_gone, target.session.nas_id,
                                          target.session.acct_session_id)
            except Exception:
                log.exception("closing the gone session %s failed",
                              target.session.acct_session_id)
        return result
