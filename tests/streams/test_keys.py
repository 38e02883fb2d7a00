"""The pseudonymisation key: a worker without one refuses to start, naming the setting."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner

from govpulse.cli import main
from govpulse.settings import SettingsError
from govpulse.streams.keys import ensure_dev_key, key_id_of, load_key


def test_a_streams_worker_without_a_key_refuses_to_start_naming_the_setting(monkeypatch):
    monkeypatch.delenv("GOVPULSE_PSEUDONYM_KEY_FILE", raising=False)
    from govpulse.settings import get_settings

    get_settings.cache_clear()
    outcome = CliRunner().invoke(main, ["streams"])
    get_settings.cache_clear()
    assert outcome.exit_code == 2
    assert "GOVPULSE_PSEUDONYM_KEY_FILE is not set" in outcome.output


def test_a_short_or_missing_key_file_is_refused(tmp_path):
    short = tmp_path / "short"
    short.write_bytes(b"x" * 16)
    with pytest.raises(SettingsError, match="16 bytes, need 32"):
        load_key(short)
    with pytest.raises(SettingsError, match="cannot read the key"):
        load_key(tmp_path / "absent")


def test_the_dev_key_is_private_stable_and_its_id_reveals_nothing(tmp_path):
    path = ensure_dev_key(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_dev_key(tmp_path).read_bytes() == path.read_bytes()
    key = load_key(path)
    assert key.key_id == key_id_of(path.read_bytes().strip())
    assert key.key_id.startswith("k-") and path.read_bytes().hex() not in repr(key)
