from pathlib import Path

import pytest

from aurora.config import load_config
from aurora.configsections import DEFAULT_BASE_URL, DEFAULT_DATA_URL
from aurora.errors import ConfigError, CredentialsError


def test_defaults():
    cfg = load_config(env={})
    assert cfg.data_dir == Path("data")
    assert cfg.alpaca.data_url == DEFAULT_DATA_URL
    assert cfg.alpaca.base_url == DEFAULT_BASE_URL == "https://api.alpaca.markets"
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


def test_trading_url_from_the_sdk_variable_checked_like_data_url(tmp_path: Path):
    cfg = load_config(env={"APCA_API_BASE_URL": "https://paper-api.alpaca.markets/"})
    assert cfg.alpaca.base_url == "https://paper-api.alpaca.markets"
    toml = tmp_path / "aurora.toml"
    toml.write_text('[alpaca]\nbase_url = "http://127.0.0.1:5000"\n')
    assert load_config(toml, env={}).alpaca.base_url == "http://127.0.0.1:5000"
    with pytest.raises(ConfigError) as info:
        load_config(env={"APCA_API_BASE_URL": "paper-api.alpaca.markets"})
    assert str(info.value) == ("environment variable APCA_API_BASE_URL: alpaca.base_url: must "
                               "start with http:// or https://")


@pytest.mark.parametrize(("url", "host"), [
    ("https://data.alpaca.markets/v2", "https://data.alpaca.markets"),
    ("https://paper-api.alpaca.markets/V2/", "https://paper-api.alpaca.markets"),
    ("https://data.alpaca.markets/v1beta1/", "https://data.alpaca.markets"),
    ("https://proxy.example/alpaca/v2", "https://proxy.example/alpaca"),
    ("https://v2", "https://v2"),  # a host, not a version
])
def test_an_api_version_at_the_end_of_a_url_is_dropped_not_doubled(url, host):
    """Aurora adds /v2/stocks/bars itself: a URL copied with /v2 would ask /v2/v2/..."""
    cfg = load_config(env={"APCA_API_DATA_URL": url, "APCA_API_BASE_URL": url})
    assert cfg.alpaca.data_url == cfg.alpaca.base_url == host


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


@pytest.mark.parametrize(("env", "needle"), [
    ({"AURORA_DATA_DIR": ""}, "environment variable AURORA_DATA_DIR: data_dir: is empty"),
    ({"AURORA_DATA_DIR": "  "}, "environment variable AURORA_DATA_DIR: data_dir: is empty"),
    ({"AURORA_UNIVERSE": ""}, "environment variable AURORA_UNIVERSE: universe: is empty"),
    ({"AURORA_CONFIG": ""}, "environment variable AURORA_CONFIG is empty"),
])
def test_an_empty_path_setting_is_an_error_not_the_current_directory(env, needle):
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert str(info.value).startswith(needle)


def test_an_empty_path_in_the_toml_file_names_the_file_and_setting(tmp_path: Path):
    toml = tmp_path / "a.toml"
    toml.write_text('data_dir = ""\n')
    with pytest.raises(ConfigError, match=rf"^{toml}: data_dir: is empty"):
        load_config(toml, env={})
    toml.write_text('universe = ""\n')
    with pytest.raises(ConfigError, match=rf"^{toml}: universe: is empty"):
        load_config(toml, env={})


def test_an_unusable_config_file_is_a_config_error(tmp_path: Path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xba\xff\x00\x13garbage")
    for path, needle in ((binary, "not a TOML text file (not UTF-8"),
                         (tmp_path, "is a directory, not a configuration file"),
                         (Path("/proc/self/mem"), "configuration file cannot be read")):
        if not path.exists():
            continue
        with pytest.raises(ConfigError) as info:
            load_config(path, env={})
        assert str(info.value).startswith(f"{path}: {needle}"), info.value


@pytest.mark.parametrize(("setting", "value", "needle"), [
    ("deadline", "25:00", "ops.deadline: expected a time of day as HH:MM"),
    ("deadline", "4pm", "ops.deadline: expected a time of day as HH:MM"),
    ("deadline", "16:60", "ops.deadline: expected a time of day as HH:MM"),
    ("deadline_timezone", "Mars/Olympus_Mons", "ops.deadline_timezone: unknown time zone"),
    ("deadline_timezone", "../../etc/passwd", "ops.deadline_timezone: unknown time zone"),
])
def test_a_bad_deadline_setting_names_source_and_setting(tmp_path: Path, setting, value,
                                                         needle):
    toml = tmp_path / "a.toml"
    toml.write_text(f'[ops]\n{setting} = "{value}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(toml, env={})
    assert str(info.value).startswith(f"{toml}: {needle}")
    name = f"AURORA_OPS__{setting.upper()}"
    with pytest.raises(ConfigError, match=f"^environment variable {name}: {needle}"):
        load_config(env={name: value})


def test_valid_deadline_settings(tmp_path: Path):
    ops = load_config(env={"AURORA_OPS__DEADLINE": "9:30",
                           "AURORA_OPS__DEADLINE_TIMEZONE": "Europe/London"}).ops
    assert (ops.deadline, ops.deadline_timezone) == ("09:30", "Europe/London")


def test_a_relative_universe_in_a_toml_file_is_relative_to_that_file(tmp_path: Path,
                                                                      monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    toml = conf / "aurora.toml"
    toml.write_text('universe = "lists/u.txt"\ndata_dir = "data"\n')
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(toml, env={})
    assert cfg.universe == conf / "lists" / "u.txt"
    assert cfg.data_dir == Path("data")  # data_dir stays relative to the working directory
    # environment variables and flags stay relative to the working directory
    assert load_config(toml, env={"AURORA_UNIVERSE": "mine.txt"}).universe == Path("mine.txt")
    assert load_config(toml, env={}, overrides={"universe": "flag.txt"}).universe == Path(
        "flag.txt")
    toml.write_text(f'universe = "{tmp_path / "abs.txt"}"\n')
    assert load_config(toml, env={}).universe == tmp_path / "abs.txt"
    toml.write_text('universe = "~/home.txt"\n')  # the home directory, not conf/~
    assert load_config(toml, env={}).universe == Path("~/home.txt")


@pytest.mark.parametrize("setting", ["new_history", "synthetic"])
def test_one_off_settings_come_only_from_the_command_line(tmp_path, setting):
    toml = tmp_path / "aurora.toml"
    toml.write_text(f"[fetch]\n{setting} = true\n")
    with pytest.raises(ConfigError, match=rf"aurora.toml: fetch.{setting}: can only be asked"):
        load_config(toml, env={})
    with pytest.raises(ConfigError, match=rf"AURORA_FETCH__{setting.upper()}.*command line"):
        load_config(env={f"AURORA_FETCH__{setting.upper()}": "true"})
    assert getattr(load_config(env={}, overrides={f"fetch.{setting}": True}).fetch, setting)
