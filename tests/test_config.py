from pathlib import Path

import pytest

from aurora.config import DEFAULT_DATA_URL, load_config
from aurora.errors import ConfigError, CredentialsError


def test_defaults():
    cfg = load_config(env={})
    assert cfg.data_dir == Path("data")
    assert cfg.alpaca.data_url == DEFAULT_DATA_URL
    assert cfg.fetch.rate_limit_per_minute == 200
    assert cfg.fetch.batch_size == 50


def test_precedence_file_then_env_then_flags(tmp_path: Path):
    toml = tmp_path / "aurora.toml"
    toml.write_text('data_dir = "from-file"\n[fetch]\nbatch_size = 10\nfeed = "iex"\n')
    cfg = load_config(toml, env={"AURORA_DATA_DIR": "from-env", "AURORA_FETCH__BATCH_SIZE": "20"})
    assert cfg.data_dir == Path("from-env")
    assert cfg.fetch.batch_size == 20
    assert cfg.fetch.feed == "iex"
    cfg = load_config(toml, env={"AURORA_DATA_DIR": "from-env"}, overrides={"data_dir": "flag",
                                                                           "fetch.feed": None})
    assert cfg.data_dir == Path("flag")
    assert cfg.fetch.feed == "iex"


def test_bad_value_names_source_and_setting(tmp_path: Path):
    toml = tmp_path / "aurora.toml"
    toml.write_text("[fetch]\nbatch_size = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(toml, env={})
    assert str(info.value).startswith(f"{toml}: fetch.batch_size:")


def test_secret_values_never_appear(tmp_path: Path):
    cfg = load_config(env={"APCA_API_KEY_ID": "AKSECRETKEYID", "APCA_API_SECRET_KEY": "shh-123"})
    assert "AKSECRETKEYID" not in repr(cfg) and "shh-123" not in str(cfg.model_dump())
    assert cfg.alpaca.require_credentials() == ("AKSECRETKEYID", "shh-123")
    toml = tmp_path / "a.toml"
    toml.write_text('[alpaca]\nkey_id = 5\n')
    with pytest.raises(ConfigError) as info:
        load_config(toml, env={"APCA_API_SECRET_KEY": "shh-123"})
    assert "shh-123" not in str(info.value)


def test_missing_credentials_name_the_variables():
    with pytest.raises(CredentialsError) as info:
        load_config(env={}).alpaca.require_credentials()
    assert "APCA_API_KEY_ID and APCA_API_SECRET_KEY" in str(info.value)


def test_unknown_setting_is_rejected(tmp_path: Path):
    toml = tmp_path / "a.toml"
    toml.write_text("[fetch]\nbtach_size = 3\n")
    with pytest.raises(ConfigError, match=r"fetch\.btach_size: unknown setting"):
        load_config(toml, env={})


@pytest.mark.parametrize("body", ['[alpaca]\nsecret = "MyRealSecretValue123"\n',
                                  '[ops]\nwebhook = "MyRealSecretValue123"\n',
                                  '[alpaca]\ndata_url = "MyRealSecretValue123"\n'])
def test_values_in_secret_sections_are_never_echoed(tmp_path: Path, body: str):
    toml = tmp_path / "a.toml"
    toml.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_config(toml, env={})
    assert "MyRealSecretValue123" not in str(info.value)
    assert str(info.value).startswith(f"{toml}: ")
