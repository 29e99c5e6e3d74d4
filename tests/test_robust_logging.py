"""Log lines an operator can read under a flood (issue 12, point 3)."""

from __future__ import annotations

import logging

import pytest

from aaa.outcome import Decision, Outcome
from core.logs import setup_logging
from tests.test_radius_protocol import RecordingHandler, access_request, make_harness


def reject_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "wrong-password" in r.getMessage()]


def test_reject_lines_name_login_and_nas_and_are_rate_limited(
        caplog: pytest.LogCaptureFixture) -> None:
    """500 wrong passwords in a minute: the first 60 are logged at INFO with login and NAS,
    the rest only counted; the next minute's first line says how many were left out."""
    h = make_harness(handler=RecordingHandler(
        auto=Decision(Outcome.WRONG_PASSWORD, detail="alice pap")))
    caplog.set_level(logging.INFO, logger="aaa.radius")
    for i in range(500):
        h.send(access_request(ident=i % 256)[1], ("192.0.2.10", 10000 + i))
    assert len(h.replies) == 500
    lines = reject_lines(caplog)
    assert len(lines) == 60
    assert "alice" in lines[0] and "nas1" in lines[0]
    assert all(r.levelno == logging.INFO for r in caplog.records if "wrong-password" in
               r.getMessage())
    h.clock.advance(61)
    h.send(access_request(ident=7)[1], ("192.0.2.10", 20000))
    assert "440 similar lines left out" in reject_lines(caplog)[-1]


def test_drop_lines_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    """A flood of malformed datagrams from a known NAS writes at most the budget of lines."""
    h = make_harness()
    caplog.set_level(logging.INFO, logger="aaa.radius")
    for i in range(300):
        h.send(b"\x01\x00\x00\x30" + bytes(16), ("192.0.2.10", 10000 + i))
    assert len([r for r in caplog.records if "dropped packet" in r.getMessage()]) == 60


def test_accepts_are_logged_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """A routine Accept writes nothing at INFO; at DEBUG it writes one line."""
    h = make_harness(handler=RecordingHandler(auto=Decision(Outcome.ACCEPT, detail="alice pap")))
    caplog.set_level(logging.INFO, logger="aaa.radius")
    h.send(access_request()[1])
    assert [r for r in caplog.records if r.name == "aaa.radius"] == []
    caplog.set_level(logging.DEBUG, logger="aaa.radius")
    h.send(access_request(ident=2)[1])
    assert len([r for r in caplog.records if r.name == "aaa.radius"]) == 1


@pytest.mark.parametrize(("setting", "info_shown"), [("warn", False), ("info", True)])
def test_scheduler_info_lines_follow_logging_scheduler(setting: str, info_shown: bool) -> None:
    """APScheduler's per-run INFO lines are hidden unless [logging] scheduler = "info"."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("info", setting)
        assert logging.getLogger("apscheduler.executors.default").isEnabledFor(
            logging.INFO) is info_shown
        assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging.getLogger("apscheduler").setLevel(logging.NOTSET)
