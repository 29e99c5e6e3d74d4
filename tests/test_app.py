"""The application shell's service ordering."""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer

from radbill.app import OrderedMultiService


class Recorder(service.Service):
    def __init__(self, name: str, log: list[str], pending: defer.Deferred[None] | None = None):
        self.setName(name)
        self.log = log
        self.pending = pending

    def stopService(self) -> defer.Deferred[None] | None:  # type: ignore[override]
        super().stopService()
        self.log.append(f"stop {self.name}")
        return self.pending


def test_children_stop_in_reverse_one_after_another() -> None:
    """The first child (the DB pool) stops only after the later ones finished stopping."""
    log: list[str] = []
    slow: defer.Deferred[None] = defer.Deferred()
    root = OrderedMultiService()
    Recorder("db", log).setServiceParent(root)
    Recorder("accounting", log, slow).setServiceParent(root)
    Recorder("radius", log).setServiceParent(root)
    root.startService()
    done = root.stopService()
    assert log == ["stop radius", "stop accounting"]
    assert not done.called
    slow.callback(None)
    assert log == ["stop radius", "stop accounting", "stop db"]
    assert done.called
