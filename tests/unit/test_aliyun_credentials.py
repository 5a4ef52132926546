"""Which Alibaba Cloud credentials acmelab picks (arguments, Alibaba's standard
environment variables, the aliyun CLI's config.json) and that none of them
shows a secret or token.  No network: the lab tests sign with each kind."""

from __future__ import annotations

import json
import logging

import pytest

from acmelab.aliyun import (ECS_METADATA_URL, AliyunClient, Credentials, EcsRamRole, RamRoleArn, _SDK_FILTER,
                            load_profile, resolve_credentials)
from acmelab.errors import InputError

SECRET = "unit-secret-0123456789abcdef"
TOKEN = "CAISunit-token-abcdefghijklmnopqrstuvwxyz"
ARN = "acs:ram::1380000000000000:role/acmelab-dns"


def write_config(path, profiles, current="default"):
    path.write_text(json.dumps({"current": current, "profiles": profiles}), encoding="utf-8")
    return path


PROFILES = [
    {"name": "default", "mode": "AK", "access_key_id": "LTAIak", "access_key_secret": SECRET, "region_id": "cn-hangzhou"},
    {"name": "sts", "mode": "StsToken", "access_key_id": "STS.key", "access_key_secret": SECRET, "sts_token": TOKEN},
    {"name": "role", "mode": "RamRoleArn", "access_key_id": "LTAIak", "access_key_secret": SECRET,
     "ram_role_arn": ARN, "ram_session_name": "ops", "expired_seconds": 1800, "sts_region": "ap-southeast-1"},
    {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "acmelab-ecs"},
    {"name": "sso", "mode": "CloudSSO"},
    {"name": "broken", "mode": "StsToken", "access_key_id": "STS.key", "access_key_secret": SECRET},
]


def test_environment_sts_token_and_role_arn():
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.key", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
               "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN}
    credentials = resolve_credentials(environ=environ)
    assert credentials == Credentials("STS.key", SECRET, TOKEN) and credentials.mode == "StsToken"
    role = resolve_credentials(environ={"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIak",
                                        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
                                        "ALIBABA_CLOUD_ROLE_ARN": ARN, "ALIBABA_CLOUD_ROLE_SESSION_NAME": "ci-run"})
    assert isinstance(role, RamRoleArn)
    assert (role.role_arn, role.role_session_name, role.duration_seconds) == (ARN, "ci-run", 3600)
    assert role.source == Credentials("LTAIak", SECRET)
    # explicit keys win over the environment, and do not pick up its token
    assert resolve_credentials("LTAIarg", SECRET, environ=environ) == Credentials("LTAIarg", SECRET)


def test_environment_ecs_role_with_an_overridable_metadata_url():
    role = resolve_credentials(environ={"ALIBABA_CLOUD_ECS_METADATA": "acmelab-ecs"})
    assert role == EcsRamRole("acmelab-ecs") and role.metadata_url == ECS_METADATA_URL
    lab = resolve_credentials(environ={"ALIBABA_CLOUD_ECS_METADATA": "acmelab-ecs",
                                       "ACMELAB_ECS_METADATA_URL": "https://localhost:8443/latest/meta-data"})
    assert lab.metadata_url == "https://localhost:8443/latest/meta-data/"
    with pytest.raises(InputError, match="plain HTTP"):
        EcsRamRole("r", metadata_url="http://127.0.0.1:8080/latest/meta-data/")


def test_cli_profiles_in_every_mode(tmp_path):
    config = write_config(tmp_path / "config.json", PROFILES)
    assert load_profile(None, config) == Credentials("LTAIak", SECRET)            # "current"
    assert load_profile("sts", config) == Credentials("STS.key", SECRET, TOKEN)
    role = load_profile("role", config)
    assert isinstance(role, RamRoleArn)
    assert (role.role_arn, role.role_session_name, role.duration_seconds, role.sts_endpoint) == \
        (ARN, "ops", 1800, "sts.ap-southeast-1.aliyuncs.com")
    assert load_profile("ecs", config) == EcsRamRole("acmelab-ecs")


def test_profile_from_argument_environment_or_the_current_one(tmp_path):
    config = write_config(tmp_path / "config.json", PROFILES, current="sts")
    keys = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
    # --profile (the argument) beats keys in the environment
    assert resolve_credentials(profile="ecs", config_file=config, environ=keys) == EcsRamRole("acmelab-ecs")
    # the command's --aliyun-profile (ACMELAB_ALIYUN_PROFILE) too; ALIBABA_CLOUD_PROFILE comes after the keys
    command = {**keys, "ACMELAB_ALIYUN_PROFILE": "ecs", "ALIBABA_CLOUD_CONFIG_FILE": str(config)}
    assert resolve_credentials(environ=command) == EcsRamRole("acmelab-ecs")
    assert resolve_credentials(environ={**keys, "ALIBABA_CLOUD_PROFILE": "ecs"}).access_key_id == "LTAIenv"
    # ALIBABA_CLOUD_PROFILE and ALIBABA_CLOUD_CONFIG_FILE
    environ = {"ALIBABA_CLOUD_PROFILE": "role", "ALIBABA_CLOUD_CONFIG_FILE": str(config)}
    assert resolve_credentials(environ=environ).mode == "RamRoleArn"
    # nothing else set: the file's current profile, from ~/.aliyun/config.json
    (tmp_path / ".aliyun").mkdir()
    write_config(tmp_path / ".aliyun" / "config.json", PROFILES, current="sts")
    assert resolve_credentials(environ={"HOME": str(tmp_path)}).mode == "StsToken"
    with pytest.raises(InputError, match="ALIBABA_CLOUD_PROFILE"):
        resolve_credentials(environ={"HOME": str(tmp_path / "nowhere")})


def test_bad_profiles_are_clear_and_show_no_secret(tmp_path):
    config = write_config(tmp_path / "config.json", PROFILES)
    errors = []
    for name, pattern in [("nope", r"no profile 'nope' .*profiles: default, sts, role, ecs, sso, broken"),
                          ("sso", r"mode 'CloudSSO'; acmelab signs with AK, StsToken, RamRoleArn and EcsRamRole"),
                          ("broken", r"profile 'broken' .* \(mode StsToken\) has no sts_token")]:
        with pytest.raises(InputError, match=pattern) as caught:
            load_profile(name, config)
        errors.append(str(caught.value))
    with pytest.raises(InputError, match="does not exist"):
        load_profile("default", tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json " + SECRET)
    with pytest.raises(InputError, match="unreadable") as caught:
        load_profile("default", tmp_path / "bad.json")
    errors.append(str(caught.value))
    assert not any(SECRET in text or TOKEN in text for text in errors)


@pytest.mark.parametrize("seconds, pattern", [
    ("1h", "expired_seconds '1h' is not a whole number of seconds"),
    (1800.5, "expired_seconds 1800.5 is not a whole number"),
    (True, "expired_seconds True is not a whole number"),
    (60, "role session duration 60: 900 to 43200 seconds"),
])
def test_a_bad_expired_seconds_is_an_input_error_naming_the_profile(tmp_path, seconds, pattern):
    role = {**PROFILES[2], "expired_seconds": seconds}
    with pytest.raises(InputError, match=pattern) as caught:
        load_profile("role", write_config(tmp_path / "config.json", [role]))
    assert str(caught.value).startswith("profile 'role' of ") and SECRET not in str(caught.value)


def test_expired_seconds_as_digits_is_accepted(tmp_path):
    role = {**PROFILES[2], "expired_seconds": "1800"}
    assert load_profile("role", write_config(tmp_path / "config.json", [role])).duration_seconds == 1800


@pytest.mark.parametrize("kwargs, pattern", [
    ({"role_arn": "arn:aws:iam::1:role/x"}, "not a RAM role ARN"),
    ({"role_arn": ARN, "role_session_name": "a"}, "role session name"),
    ({"role_arn": ARN, "duration_seconds": 600}, "900 to 43200"),
])
def test_role_arn_is_checked(kwargs, pattern):
    with pytest.raises(InputError, match=pattern):
        RamRoleArn(Credentials("LTAIak", SECRET), **kwargs)


def test_no_secret_or_token_in_reprs():
    sts = Credentials("STS.key", SECRET, TOKEN)
    role = RamRoleArn(Credentials("LTAIak", SECRET), ARN)
    ecs = EcsRamRole("acmelab-ecs")
    for credentials in (sts, role, ecs):
        client = AliyunClient(credentials, endpoint="localhost:1")      # no call: nothing fetched
        for text in (repr(credentials), str(credentials), repr(client)):
            assert SECRET not in text and TOKEN not in text
        assert credentials.mode in repr(client)
    assert "STS.key" in repr(sts) and ARN in str(role) and "acmelab-ecs" in str(ecs)


@pytest.mark.parametrize("message", [
    "GET https://alidns.aliyuncs.com/?AccessKeyId=STS.k&SecurityToken=CAISsecret-token&Signature=x",
    "Params: {'RR': 'x', 'SecurityToken': 'CAISsecret-token', 'Version': '2015-01-09'}",
    'Response-body: b\'{"Credentials": {"AccessKeySecret": "CAISsecret-token", "SecurityToken": "CAISsecret-token"}}\'',
])
def test_sdk_log_lines_lose_tokens_and_temporary_secrets(message):
    record = logging.LogRecord("aliyunsdkcore.client", logging.DEBUG, __file__, 1, "%s", (message,), None)
    assert _SDK_FILTER.filter(record)
    assert "CAISsecret-token" not in record.getMessage() and "***" in record.getMessage()


@pytest.mark.parametrize("name", [
    "aliyunsdkcore.client",
    "aliyunsdkcore.http.http_response",                     # DEBUG=sdk: the full URL and every header
    "aliyunsdkcore.auth.signers.ram_role_arn_signer",
    "aliyunsdkcore.vendored.requests.packages.urllib3.connectionpool",   # the request line, query included
    "acmelab.aliyun",
])
def test_every_sdk_logger_masks_before_the_root_handler_sees_it(name):
    """The filter must sit on the logger that creates the record: a parent's
    filters never see records propagated from its children."""
    import io

    from acmelab.aliyun import AliyunClient

    AliyunClient(Credentials("LTAIak", SECRET), endpoint="localhost:1")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root, sdk_logger = logging.getLogger(), logging.getLogger(name)
    old = root.level, sdk_logger.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sdk_logger.setLevel(logging.DEBUG)
    try:
        sdk_logger.debug("> POST https://alidns.aliyuncs.com/?SecurityToken=%s&Signature=pr6JT8Dk9%%2FHly HTTP/1.1"
                         "\n> x-acs-security-token : %s\n< %s", TOKEN, TOKEN,
                         '{"AccessKeySecret": "%s", "SecurityToken": "%s"}' % (SECRET, TOKEN))
    finally:
        root.removeHandler(handler)
        root.setLevel(old[0])
        sdk_logger.setLevel(old[1])
    logged = stream.getvalue()
    assert "SecurityToken=***&Signature=***" in logged and "x-acs-security-token : ***" in logged
    assert TOKEN not in logged and SECRET not in logged and "pr6JT8Dk9" not in logged


def test_command_option_does_not_clash_with_the_acme_profile():
    from acmelab.cli import build_parser

    args = build_parser().parse_args(["issue", "-d", "shop.example.com", "--dns", "alidns", "--profile", "tlsserver",
                                      "--aliyun-profile", "ops"])
    assert (args.profile, args.aliyun_profile) == ("tlsserver", "ops")
    args = build_parser().parse_args(["apply", "services.toml", "--aliyun-profile", "ops"])
    assert args.aliyun_profile == "ops"
