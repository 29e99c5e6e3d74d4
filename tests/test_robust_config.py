"""Broken configs give one clear line, never a traceback or a fresh empty database (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from radbill.cli import main


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "radbill.cli", *argv], capture_output=True,
                          text=True, timeout=60, check=False)


def test_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """A Latin-1 config file is refused with one line naming the file and the offending octet."""
    path = tmp_path / "radbill.toml"
    path.write_bytes('[server]\nnode_name = "M\xfcnchen"\n'.encode("latin-1"))
    result = run_cli("--config", str(path), "serve")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "UTF-8" in lines[0] and "0xfc" in lines[0]


@pytest.mark.parametrize("command", [["serve"], ["subscriber", "list"]])
def test_missing_data_dir_is_one_line_and_nothing_is_created(
        tmp_path: Path, command: list[str]) -> None:
    """A data_dir that does not exist is named in one line; no directory or database appears."""
    missing = tmp_path / "not-there"
    config = tmp_path / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{missing}"\n[radius]\nlisten = ["127.0.0.1"]\n'
                      'auth_port = 0\nacct_port = 0\n', encoding="utf-8")
    result = run_cli("--config", str(config), *command)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "server.data_dir" in lines[0] and "does not exist" in lines[0]
    assert not missing.exists()


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A data_dir pointing at a file is refused too, naming the key."""
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    config = tmp_path / "radbill.toml"
    config.write_text(f'[server]\ndata_dir = "{not_dir}"\n', encoding="utf-8")
    assert main(["--config", str(config), "subscriber", "list"]) != 0
    err = capsys.readouterr().err
    assert "server.data_dir" in err and "not a directory" in err
