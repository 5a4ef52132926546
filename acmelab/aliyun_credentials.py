"""Alibaba Cloud credentials: the kinds acmelab signs with, and where they come from.

* :class:`Credentials` -- an AccessKey (``AccessKeyId`` plus secret), or
  temporary STS credentials when it carries a ``security_token`` (sent as
  ``SecurityToken``);
* :class:`RamRoleArn` -- assume a RAM role with an AccessKey (Sts
  2015-04-01 ``AssumeRole``: role ARN, session name, duration);
* :class:`EcsRamRole` -- the RAM role of the ECS instance, from the instance
  metadata service (the metadata URL can be pointed elsewhere, e.g. at the
  lab's loopback one).

None of them shows a secret or token in ``repr`` or ``str``.
:func:`resolve_credentials` picks one from the arguments, Alibaba's standard
environment variables or a profile of the ``aliyun`` CLI's
``~/.aliyun/config.json`` (:func:`load_profile`; modes AK, StsToken,
RamRoleArn, EcsRamRole).

This module only describes and finds credentials; signing with them (the
classic SDK's signers, the temporary credentials they fetch) is
:class:`acmelab.aliyun.AliyunClient`'s.  Every name here is importable from
:mod:`acmelab.aliyun` too.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

from acmelab.errors import ConfigError, InputError

#: environment variables read for the AccessKeyId, first match wins
ACCESS_KEY_ID_ENV = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_ID")
#: environment variables read for the AccessKeySecret, first match wins
ACCESS_KEY_SECRET_ENV = ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIYUN_ACCESS_KEY_SECRET")
#: Alibaba's standard names (alibabacloud_credentials, the aliyun CLI) for the other credentials
SECURITY_TOKEN_ENV = "ALIBABA_CLOUD_SECURITY_TOKEN"
ROLE_ARN_ENV = "ALIBABA_CLOUD_ROLE_ARN"
ROLE_SESSION_NAME_ENV = "ALIBABA_CLOUD_ROLE_SESSION_NAME"
ECS_METADATA_ENV = "ALIBABA_CLOUD_ECS_METADATA"            # the ECS instance's RAM role name
PROFILE_ENV = "ALIBABA_CLOUD_PROFILE"                       # a profile of the aliyun CLI's config.json
#: acmelab's own: the command's ``--aliyun-profile`` (a profile that wins over keys in the environment)
COMMAND_PROFILE_ENV = "ACMELAB_ALIYUN_PROFILE"
CONFIG_FILE_ENV = "ALIBABA_CLOUD_CONFIG_FILE"               # that file, instead of ~/.aliyun/config.json
#: acmelab's own: the instance metadata service's base URL (tests: the lab's loopback one)
ECS_METADATA_URL_ENV = "ACMELAB_ECS_METADATA_URL"
#: the ECS instance metadata service (link-local; plain HTTP by design, reachable only on an instance)
ECS_METADATA_URL = "http://100.100.100.200/latest/meta-data/"
#: AssumeRole's DurationSeconds bounds (Sts 2015-04-01; the upper one is the role's MaxSessionDuration, at most 12 h)
ROLE_DURATION_RANGE = (900, 43200)


@dataclass(frozen=True)
class Credentials:
    """An Alibaba Cloud AccessKey -- ``access_key_id`` and ``access_key_secret``
    -- or, with a ``security_token``, temporary STS credentials (an
    ``STS.`` AccessKeyId, its secret and the token; signed with the SDK's
    ``StsTokenSigner``, which sends the token as ``SecurityToken``).

    ``repr()`` and ``str()`` show the AccessKeyId only; the secret and the
    token are never printed.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.access_key_id, str) or not self.access_key_id.strip():
            raise InputError("the Alibaba Cloud AccessKeyId is empty")
        if not isinstance(self.access_key_secret, str) or not self.access_key_secret:
            raise InputError(f"the access key secret for AccessKeyId {self.access_key_id} is empty")
        if self.security_token is not None and (not isinstance(self.security_token, str)
                                                or not self.security_token.strip()):
            raise InputError(f"the security token for AccessKeyId {self.access_key_id} is empty")

    @property
    def mode(self) -> str:
        """The ``aliyun`` CLI's name for it: ``"AK"`` or ``"StsToken"``."""
        return "StsToken" if self.security_token else "AK"

    def __str__(self) -> str:
        if self.security_token:
            return f"AccessKeyId {self.access_key_id} (STS token)"
        return f"AccessKeyId {self.access_key_id}"

    @classmethod
    def resolve(cls, access_key_id: str | None = None, access_key_secret: str | None = None,
                environ: Mapping[str, str] | None = None) -> "CredentialSource":
        """The credentials to use: :func:`resolve_credentials` (kept under
        this name: an AccessKey from the arguments or the environment is a
        :class:`Credentials`; a profile, a role ARN or an ECS role is not).

        Raises:
            InputError: as :func:`resolve_credentials`.
        """
        return resolve_credentials(access_key_id, access_key_secret, environ=environ)

    from_env = resolve


@dataclass(frozen=True)
class RamRoleArn:
    """Temporary credentials of a RAM role, assumed with an AccessKey
    (Sts 2015-04-01 ``AssumeRole``) and assumed again before they expire
    (the SDK's ``RamRoleArnSigner``, at 80 % of ``duration_seconds``).

    Args:
        source: the AccessKey (of a RAM user allowed ``sts:AssumeRole`` on the role).
        role_arn: ``acs:ram::<account id>:role/<role name>``.
        role_session_name: ``RoleSessionName``, 2-64 of ``A-Za-z0-9.@_-``
            (shows in ActionTrail).
        duration_seconds: ``DurationSeconds``, 900 up to the role's
            MaxSessionDuration (at most 43200).
        sts_endpoint: STS host (``"host:port"``); default the client's
            endpoint if it has one (the lab), else ``sts.aliyuncs.com``.
        policy: an optional ``Policy`` (JSON text) narrowing the role's rights.
        external_id: an optional ``ExternalId`` (roles that require one).

    Raises:
        InputError: a malformed role ARN, session name or duration.
    """

    source: Credentials
    role_arn: str
    role_session_name: str = "acmelab"
    duration_seconds: int = 3600
    sts_endpoint: str | None = None
    policy: str | None = None
    external_id: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"acs:ram::\d+:role/[^/\s]+", self.role_arn or ""):
            raise InputError(f"{self.role_arn!r} is not a RAM role ARN (acs:ram::<account id>:role/<name>)")
        if not re.fullmatch(r"[A-Za-z0-9.@_-]{2,64}", self.role_session_name or ""):
            raise InputError(f"role session name {self.role_session_name!r}: 2 to 64 of A-Z a-z 0-9 . @ _ -")
        low, high = ROLE_DURATION_RANGE
        if not isinstance(self.duration_seconds, int) or not low <= self.duration_seconds <= high:
            raise InputError(f"role session duration {self.duration_seconds!r}: {low} to {high} seconds")

    @property
    def mode(self) -> str:
        return "RamRoleArn"

    @property
    def access_key_id(self) -> str:
        """The AccessKeyId that assumes the role (for messages)."""
        return self.source.access_key_id

    def __str__(self) -> str:
        return f"role {self.role_arn} (session {self.role_session_name}, assumed by {self.source})"


@dataclass(frozen=True)
class EcsRamRole:
    """Temporary credentials of the RAM role attached to the ECS instance,
    from the instance metadata service (``<metadata_url>ram/security-credentials/<role>``;
    hardened mode: a token from ``PUT /latest/api/token`` first, falling back
    to the plain request unless ``imds_v1_disabled``), fetched again before
    they expire.

    Args:
        role_name: the role; None asks the metadata service which role the instance has.
        metadata_url: base URL, default :data:`ECS_METADATA_URL` (plain HTTP
            only there: the service offers nothing else); any other URL must
            be ``https://`` (the lab's: ``https://<aliyun_endpoint>/latest/meta-data/``).
        verify: ``True`` or a CA bundle path, for an ``https://`` metadata URL.
        timeout: seconds per metadata request.
        imds_v1_disabled: refuse the fallback without a token.

    Raises:
        InputError: an ``http://`` URL other than the ECS service's.
    """

    role_name: str | None = None
    metadata_url: str = ECS_METADATA_URL
    verify: bool | str | Path = True
    timeout: float = 2.0
    imds_v1_disabled: bool = False

    def __post_init__(self) -> None:
        url = self.metadata_url
        if not url.endswith("/"):
            object.__setattr__(self, "metadata_url", url := url + "/")
        if url.lower().startswith("http://") and url != ECS_METADATA_URL:
            raise InputError(f"refusing plain HTTP metadata URL {url!r}: only the ECS service "
                             f"({ECS_METADATA_URL}) is reached without TLS")
        if not url.lower().startswith(("http://", "https://")):
            raise InputError(f"bad instance metadata URL {url!r}")

    @property
    def mode(self) -> str:
        return "EcsRamRole"

    @property
    def access_key_id(self) -> str:
        """No fixed AccessKeyId: a description for messages."""
        return f"(ECS instance role {self.role_name or 'of this instance'})"

    def __str__(self) -> str:
        return f"ECS instance RAM role {self.role_name or '(asked from the metadata service)'}"

    @classmethod
    def for_lab(cls, info: Any, role_name: str | None = None) -> "EcsRamRole":
        """The lab's instance metadata answer (``info``: a ``LabInfo``), served
        by its Alibaba endpoint on loopback, TLS verified with the lab's CA.
        Raises ConfigError for a lab without that endpoint (:func:`lab_endpoint`)."""
        return cls(role_name, metadata_url=f"https://{lab_endpoint(info)}/latest/meta-data/",
                   verify=info.ca_bundle)


def lab_endpoint(info: Any) -> str:
    """The lab's Alibaba Cloud endpoint, ``info.aliyun_endpoint``
    (``"localhost:<port>"``; ``info``: an :class:`acmelab.lab.LabInfo`).

    Raises:
        ConfigError: the lab runs without it (``aliyun=False``).  Every
            ``for_lab`` goes through here, so the lab's AccessKey is never
            sent to the public ``*.aliyuncs.com`` endpoints instead.
    """
    endpoint = getattr(info, "aliyun_endpoint", None)
    if not endpoint:
        raise ConfigError("this lab runs without its Alibaba Cloud endpoint (started with aliyun=False); "
                          "start it with the endpoint to call Alibaba Cloud products against it")
    return str(endpoint)


#: any of the credentials :class:`AliyunClient` can sign with
CredentialSource = Union[Credentials, RamRoleArn, EcsRamRole]


def resolve_credentials(access_key_id: str | None = None, access_key_secret: str | None = None, *,
                        security_token: str | None = None, profile: str | None = None,
                        config_file: str | Path | None = None,
                        environ: Mapping[str, str] | None = None) -> CredentialSource:
    """The credentials to use, first match wins:

    1. ``profile`` given (or ``ACMELAB_ALIYUN_PROFILE``, what the command's
       ``--aliyun-profile`` sets): that profile of the ``aliyun`` CLI's
       config file (:func:`load_profile`);
    2. ``access_key_id`` / ``access_key_secret`` (and ``security_token``) given;
    3. ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
       (or ``ALIYUN_ACCESS_KEY_ID`` / ``ALIYUN_ACCESS_KEY_SECRET``), with
       ``ALIBABA_CLOUD_SECURITY_TOKEN`` an STS token; with
       ``ALIBABA_CLOUD_ROLE_ARN`` the key assumes that role
       (``ALIBABA_CLOUD_ROLE_SESSION_NAME``, default ``acmelab``);
    4. ``ALIBABA_CLOUD_PROFILE``: that profile;
    5. ``ALIBABA_CLOUD_ECS_METADATA``: the ECS instance's RAM role of that
       name (metadata URL ``ACMELAB_ECS_METADATA_URL``, default the ECS one);
    6. the config file's ``current`` profile, if the file exists
       (``ALIBABA_CLOUD_CONFIG_FILE``, else ``~/.aliyun/config.json``).

    Raises:
        InputError: nothing found, or a half-given key (the message names
            the variables to set), or a bad profile (:func:`load_profile`).
    """
    environ = os.environ if environ is None else environ

    def first(names: tuple[str, ...]) -> str | None:
        return next((environ[n] for n in names if environ.get(n)), None)

    profile = profile or (None if access_key_id else environ.get(COMMAND_PROFILE_ENV))
    if profile:
        return load_profile(profile, config_file, environ=environ)
    key_id = access_key_id or first(ACCESS_KEY_ID_ENV)
    secret = access_key_secret or first(ACCESS_KEY_SECRET_ENV)
    if key_id and not secret:
        raise InputError(f"no access key secret for AccessKeyId {key_id}: pass access_key_secret or set "
                         + " / ".join(ACCESS_KEY_SECRET_ENV))
    if key_id and secret:
        token = security_token if access_key_id else (security_token or environ.get(SECURITY_TOKEN_ENV) or None)
        credentials = Credentials(key_id.strip(), secret, token)
        role_arn = None if access_key_id else environ.get(ROLE_ARN_ENV)
        if role_arn:
            return RamRoleArn(credentials, role_arn, environ.get(ROLE_SESSION_NAME_ENV) or "acmelab")
        return credentials
    if environ.get(PROFILE_ENV):
        return load_profile(environ[PROFILE_ENV], config_file, environ=environ)
    if environ.get(ECS_METADATA_ENV):
        return EcsRamRole(environ[ECS_METADATA_ENV], metadata_url=environ.get(ECS_METADATA_URL_ENV) or ECS_METADATA_URL)
    path = _config_path(config_file, environ)
    if path is not None and path.is_file():
        return load_profile(None, path, environ=environ)
    raise InputError("no Alibaba Cloud credentials: set " + " / ".join(ACCESS_KEY_ID_ENV) + " and "
                     + " / ".join(ACCESS_KEY_SECRET_ENV) + f" (with {SECURITY_TOKEN_ENV} for an STS token, "
                     f"{ROLE_ARN_ENV} to assume a role), or {PROFILE_ENV} (a profile of the aliyun CLI), "
                     f"or {ECS_METADATA_ENV} (the ECS instance's RAM role)")


def _config_path(config_file: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    if config_file:
        return Path(config_file).expanduser()
    if environ.get(CONFIG_FILE_ENV):
        return Path(environ[CONFIG_FILE_ENV]).expanduser()
    home = environ.get("HOME") if environ is not os.environ else str(Path.home())
    return Path(home) / ".aliyun" / "config.json" if home else None


def load_profile(name: str | None, config_file: str | Path | None = None, *,
                 environ: Mapping[str, str] | None = None) -> CredentialSource:
    """Credentials of profile ``name`` (None: the file's ``current``) of the
    ``aliyun`` CLI's ``config.json`` (``config_file``, else
    ``ALIBABA_CLOUD_CONFIG_FILE``, else ``~/.aliyun/config.json``).

    Modes: ``AK`` (``access_key_id``, ``access_key_secret``), ``StsToken``
    (plus ``sts_token``), ``RamRoleArn`` (plus ``ram_role_arn``,
    ``ram_session_name``, ``expired_seconds``, optional ``sts_region``,
    ``policy``, ``external_id``), ``EcsRamRole`` (``ram_role_name``; empty:
    ask the metadata service).

    Raises:
        InputError: the file is missing or not JSON, no such profile (the
            message lists the ones there are), a mode acmelab does not
            sign with, a field missing or malformed (``expired_seconds``
            not 900..43200 whole seconds, a bad ``ram_role_arn``).  No
            secret is ever in the message.
    """
    environ = os.environ if environ is None else environ
    path = _config_path(config_file, environ)
    if path is None:
        raise InputError(f"no aliyun CLI config file: set {CONFIG_FILE_ENV} or HOME")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"the aliyun CLI config file {path} does not exist (run 'aliyun configure', "
                         f"or set {CONFIG_FILE_ENV})") from None
    except (OSError, ValueError) as error:
        raise InputError(f"the aliyun CLI config file {path} is unreadable: {type(error).__name__}") from None
    profiles = config.get("profiles") if isinstance(config, dict) else None
    if not isinstance(profiles, list):
        raise InputError(f"the aliyun CLI config file {path} has no \"profiles\" list")
    wanted = name or config.get("current") or "default"
    entry = next((p for p in profiles if isinstance(p, dict) and p.get("name") == wanted), None)
    if entry is None:
        names = ", ".join(str(p.get("name")) for p in profiles if isinstance(p, dict)) or "none"
        raise InputError(f"no profile {wanted!r} in {path} (profiles: {names})")
    mode = entry.get("mode") or "AK"
    where = f"profile {wanted!r} of {path}"

    def need(key: str) -> str:
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            raise InputError(f"{where} (mode {mode}) has no {key}")
        return value

    if mode == "AK":
        return Credentials(need("access_key_id"), need("access_key_secret"))
    if mode == "StsToken":
        return Credentials(need("access_key_id"), need("access_key_secret"), need("sts_token"))
    if mode == "RamRoleArn":
        region = entry.get("sts_region")
        seconds = entry.get("expired_seconds") or 3600
        if isinstance(seconds, str) and seconds.strip().isdigit():
            seconds = int(seconds)
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            low, high = ROLE_DURATION_RANGE
            raise InputError(f"{where} (mode RamRoleArn): expired_seconds {seconds!r} is not a whole number "
                             f"of seconds ({low} to {high})")
        source, role_arn = Credentials(need("access_key_id"), need("access_key_secret")), need("ram_role_arn")
        try:
            return RamRoleArn(source, role_arn, entry.get("ram_session_name") or "acmelab", seconds,
                              sts_endpoint=f"sts.{region}.aliyuncs.com" if region else None,
                              policy=entry.get("policy") or None, external_id=entry.get("external_id") or None)
        except InputError as error:
            raise InputError(f"{where} (mode RamRoleArn): {error}") from None
    if mode == "EcsRamRole":
        return EcsRamRole(entry.get("ram_role_name") or None,
                          metadata_url=environ.get(ECS_METADATA_URL_ENV) or ECS_METADATA_URL)
    raise InputError(f"{where} has mode {mode!r}; acmelab signs with AK, StsToken, RamRoleArn and EcsRamRole")
