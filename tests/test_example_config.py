"""conf/radbill.example.toml documents every key with its real default."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from core.config import describe_defaults, parse_config

EXAMPLE = Path(__file__).resolve().parent.parent / "conf" / "radbill.example.toml"


def test_example_lists_every_key_with_its_default() -> None:
    """Each config key appears in the example with the value declared as its default."""
    data = tomllib.loads(EXAMPLE.read_text())
    for section, keys in describe_defaults().items():
        assert section in data, f"[{section}] missing from the example"
        for key, (default, _doc) in keys.items():
            assert key in data[section], f"{section}.{key} missing from the example"
            if dataclasses.is_dataclass(default):  # a nested table such as [notify.email]
                default = dataclasses.asdict(default)  # type: ignore[arg-type]
            assert data[section][key] == default, f"{section}.{key} differs from its default"


def test_example_validates() -> None:
    """The example parses and passes the full validation."""
    parse_config(tomllib.loads(EXAMPLE.read_text()), str(EXAMPLE))


def test_every_example_key_is_commented() -> None:
    """Every key line in the example is preceded by a comment line (or follows a commented one)."""
    lines = EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            block = lines[max(0, i - 4):i]
            assert any(b.lstrip().startswith("#") for b in block), f"uncommented: {line}"
