"""Logging to stderr, which systemd hands to the journal; Twisted's log goes the same way."""

from __future__ import annotations

import logging
import os
import sys

from twisted.logger import STDLibLogObserver, globalLogBeginner

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}


def setup_logging(level: str = "info", scheduler: str = "warn") -> None:
    """Root at ``level``; APScheduler at ``scheduler`` (its executor logs an INFO line on
    every run of every job, which at the default 30 s billing tick is noise)."""
    # Under systemd the journal stamps time and unit itself.
    journal = "JOURNAL_STREAM" in os.environ
    fmt = "%(levelname)s %(name)s: %(message)s" if journal else \
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
    logging.getLogger("apscheduler").setLevel(LEVELS.get(scheduler, logging.WARNING))
    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")],
                                     redirectStandardIO=False, discardBuffer=True)
