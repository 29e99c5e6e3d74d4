"""Driving FreeRADIUS's real ``radclient`` from tests, and reading what it printed."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
ATTR_LINE = re.compile(r"^\s+([A-Za-z0-9-]+) = (.*)$")


def require_radclient() -> str:
    """The radclient path; skipped locally when missing, a failure in CI (.ci/run installs it)."""
    path = shutil.which("radclient")
    if path is None:
        if IN_CI:
            pytest.fail("radclient is not installed (Debian package freeradius-utils)")
        pytest.skip("radclient not installed (apt-get install freeradius-utils)")
    return path


def free_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class RadclientResult:
    code: str | None
    attributes: list[tuple[str, str]] = field(default_factory=list)
    output: str = ""

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.attributes if k == name]

    def value(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None


def parse_output(text: str) -> RadclientResult:
    code = None
    attrs: list[tuple[str, str]] = []
    receiving = False
    for line in text.splitlines():
        m = re.match(r"^Received ([A-Za-z-]+) Id", line)
        if m:
            code, receiving, attrs = m.group(1), True, []
            continue
        if line.startswith("Sent "):
            receiving = False
            continue
        if receiving:
            a = ATTR_LINE.match(line)
            if a:
                value = a.group(2).strip()
                if value.startswith('"') and value.endswith('"'):
                    value = value[1:-1]
                attrs.append((a.group(1), value))
    return RadclientResult(code, attrs, text)


def radclient(server: str, command: str, secret: str, attributes: str,
              timeout: float = 2.0, tries: int = 2) -> RadclientResult:
    """Send one packet with radclient -x (``-r`` counts tries); ``code`` is None on no reply."""
    binary = require_radclient()
    proc = subprocess.run(
        [binary, "-x", "-t", str(timeout), "-r", str(max(1, tries)), server, command, secret],
        input=attributes, capture_output=True, text=True, timeout=timeout * tries + 10,
        check=False)
    return parse_output(proc.stdout + proc.stderr)
