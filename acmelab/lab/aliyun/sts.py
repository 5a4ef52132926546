"""Temporary credentials in the lab: STS ``AssumeRole`` (Sts 2015-04-01) and
the ECS instance metadata answer for an instance RAM role.

Theory of operation
-------------------
Alibaba Cloud hands out temporary credentials -- an ``AccessKeyId`` starting
``STS.``, an ``AccessKeySecret`` and a ``SecurityToken`` with an
``Expiration`` -- two ways, and the lab does both on loopback:

* ``AssumeRole`` (Sts 2015-04-01): a caller signed with the lab's AccessKey
  (or with temporary credentials: role chaining) names a role of the lab
  account (:data:`ROLES`, ARN ``acs:ram::<LAB_ACCOUNT_ID>:role/<name>``), a
  ``RoleSessionName`` and ``DurationSeconds`` (900 up to the role's
  :data:`MAX_SESSION_DURATION`), and gets a fresh set.
* The instance metadata service: on a real ECS instance
  ``http://100.100.100.200/latest/meta-data/ram/security-credentials/<role>``
  answers the credentials of the RAM role attached to the instance.  The lab
  serves the same paths on its HTTPS endpoint (``https://<aliyun_endpoint>/latest/...``,
  TLS verified with the lab's CA), for the instance role :data:`ECS_ROLE`:
  ``.../security-credentials/`` lists the role, ``.../<role>`` answers
  ``{"Code": "Success", "AccessKeyId", "AccessKeySecret", "SecurityToken",
  "Expiration", "LastUpdated"}``; ``PUT /latest/api/token`` (header
  ``X-aliyun-ecs-metadata-token-ttl-seconds``) gives the hardened mode's token,
  sent back in ``X-aliyun-ecs-metadata-token``.

A request signed with temporary credentials carries the token
(``SecurityToken`` parameter in V1, ``x-acs-security-token`` header in V3,
signed like everything else); :func:`temporary_secret` checks it and gives the
secret the signature is checked with, or Alibaba's error:
``InvalidAccessKeyId.NotFound`` (unknown ``STS.`` key), ``MissingSecurityToken``,
``InvalidSecurityToken.MismatchWithAccessKey``, ``InvalidSecurityToken.Malformed``,
``InvalidSecurityToken.Expired``.  Lab-only ``AcmelabExpireSecurityTokens`` (``TemporaryAccessKeyId``, else
all) lets temporary credentials expire now (to test the expired answer).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from acmelab.lab.aliyun.server import ApiFault, LabRequest, LabState, action, int_param, require

VERSION = "2015-04-01"
#: the lab account's ID (the ``<uid>`` in ARNs)
LAB_ACCOUNT_ID = "1380000000000000"
#: the RAM role attached to the lab's "ECS instance" (answered by the metadata service)
ECS_ROLE = "acmelab-ecs"
#: the RAM roles of the lab account that may be assumed
ROLES = ("acmelab-dns", "acmelab-deployer", ECS_ROLE)
#: the role's MaxSessionDuration, seconds (Alibaba's default)
MAX_SESSION_DURATION = 3600
#: the shortest DurationSeconds AssumeRole accepts
MIN_SESSION_DURATION = 900
#: lifetime of the credentials the metadata service hands out, seconds
ECS_CREDENTIAL_LIFETIME = 6 * 3600
SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")
METADATA_PREFIX = "/latest/"


def role_arn(name: str) -> str:
    """``acs:ram::<LAB_ACCOUNT_ID>:role/<name>`` (names are case-insensitive at Alibaba)."""
    return f"acs:ram::{LAB_ACCOUNT_ID}:role/{name}"


@dataclass
class TemporaryKey:
    """One set of temporary credentials the lab issued."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expires: float
    role_arn: str
    session_name: str


@dataclass
class StsState:
    keys: dict[str, TemporaryKey] = field(default_factory=dict)          # AccessKeyId -> key
    metadata_tokens: dict[str, float] = field(default_factory=dict, repr=False)   # token -> expiry


def _state(state: LabState) -> StsState:
    return state.extension("sts", StsState)


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue(state: LabState, arn: str, session_name: str, duration: int) -> TemporaryKey:
    """New temporary credentials for role ``arn``, valid ``duration`` seconds."""
    key = TemporaryKey("STS.NU" + secrets.token_hex(12).upper(), secrets.token_urlsafe(30),
                       "CAIS" + secrets.token_urlsafe(96), time.time() + duration, arn, session_name)
    with state.lock:
        _state(state).keys[key.access_key_id] = key
    return key


def temporary_secret(state: LabState, access_key_id: str, security_token: str) -> str:
    """The secret a request signed with temporary credentials is checked with.

    Raises:
        ApiFault: ``InvalidAccessKeyId.NotFound`` (404), ``MissingSecurityToken``,
            ``InvalidSecurityToken.MismatchWithAccessKey``,
            ``InvalidSecurityToken.Malformed``, ``InvalidSecurityToken.Expired``.
    """
    with state.lock:
        sts = _state(state)
        key = sts.keys.get(access_key_id)
        if key is None:
            if access_key_id == state.access_key_id:        # a permanent key with a token
                raise ApiFault("InvalidSecurityToken.MismatchWithAccessKey",
                               "Specified SecurityToken mismatch with the AccessKey.")
            raise ApiFault("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if not security_token:
            raise ApiFault("MissingSecurityToken", "SecurityToken is mandatory for this action.")
        if not hmac.compare_digest(security_token.encode(), key.security_token.encode()):
            if any(hmac.compare_digest(security_token.encode(), other.security_token.encode())
                   for other in sts.keys.values()):
                raise ApiFault("InvalidSecurityToken.MismatchWithAccessKey",
                               "Specified SecurityToken mismatch with the AccessKey.")
            raise ApiFault("InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.")
        if time.time() >= key.expires:
            raise ApiFault("InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
        return key.access_key_secret


def _role(arn: str) -> str:
    """The role name of ``arn`` if it is one of :data:`ROLES`, else ApiFault."""
    match = re.fullmatch(r"acs:ram::(\d+):role/([A-Za-z0-9.-]{1,64})", arn)
    if match is None:
        raise ApiFault("InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.")
    if match.group(1) != LAB_ACCOUNT_ID or match.group(2).lower() not in ROLES:
        raise ApiFault("EntityNotExist.Role", f"The role not exists: {arn}.", 404)
    return match.group(2).lower()


@action("AssumeRole", version=VERSION)
def assume_role(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """AssumeRole: RoleArn, RoleSessionName, optional DurationSeconds (3600;
    900..MaxSessionDuration), Policy, ExternalId -> Credentials, AssumedRoleUser."""
    arn = require(params, "RoleArn")
    name = _role(arn)
    session_name = require(params, "RoleSessionName")
    if not SESSION_NAME.match(session_name):
        raise ApiFault("InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed.")
    duration = int_param(params, "DurationSeconds", 3600, minimum=0)
    if not MIN_SESSION_DURATION <= duration <= MAX_SESSION_DURATION:
        raise ApiFault("InvalidParameter.DurationSeconds",
                       f"The Min/Max value of DurationSeconds is {MIN_SESSION_DURATION}/{MAX_SESSION_DURATION} seconds, "
                       f"current value is {duration} seconds.")
    if params.get("Policy"):
        try:
            json.loads(params["Policy"])
        except ValueError:
            raise ApiFault("InvalidParameter.PolicyGrammar", "The parameter Policy has not passed grammar check.") \
                from None
    key = issue(state, role_arn(name), session_name, duration)
    role_id = f"3{ROLES.index(name) + 1:017d}"
    return {
        "Credentials": {"AccessKeyId": key.access_key_id, "AccessKeySecret": key.access_key_secret,
                        "SecurityToken": key.security_token, "Expiration": _stamp(key.expires)},
        "AssumedRoleUser": {"Arn": f"{key.role_arn}/{session_name}", "AssumedRoleId": f"{role_id}:{session_name}"},
    }


@action("AcmelabExpireSecurityTokens")
def expire_security_tokens(state: LabState, params: dict[str, str]) -> dict[str, Any]:
    """Lab only: the temporary credentials ``TemporaryAccessKeyId`` (else
    every one issued so far) expire now."""
    wanted = params.get("TemporaryAccessKeyId")
    with state.lock:
        keys = [k for k in _state(state).keys.values() if not wanted or k.access_key_id == wanted]
        for key in keys:
            key.expires = min(key.expires, time.time())
        return {"Count": len(keys)}


# --------------------------------------------------------------------------
# The instance metadata service (ECS RAM role)
# --------------------------------------------------------------------------

def serve_metadata(state: LabState, request: LabRequest) -> tuple[int, str, bytes]:
    """Answer one instance-metadata request: (HTTP status, Content-Type, body).

    ``PUT /latest/api/token`` -> a token (TTL 1..21600 s from
    ``X-aliyun-ecs-metadata-token-ttl-seconds``); ``GET
    /latest/meta-data/ram/security-credentials/`` -> the instance's role name;
    ``GET .../security-credentials/<role>`` -> its credentials (JSON).  A token
    sent in ``X-aliyun-ecs-metadata-token`` must be valid (401 otherwise).
    """
    now = time.time()
    if request.path == "/latest/api/token":
        if request.method != "PUT":
            return 405, "text/plain", b"Method Not Allowed"
        try:
            ttl = int(request.header("X-aliyun-ecs-metadata-token-ttl-seconds"))
        except ValueError:
            return 400, "text/plain", b"Bad Request"
        if not 1 <= ttl <= 21600:
            return 400, "text/plain", b"Bad Request"
        token = secrets.token_urlsafe(32)
        with state.lock:
            _state(state).metadata_tokens[token] = now + ttl
        return 200, "text/plain", token.encode()
    if request.method != "GET":
        return 405, "text/plain", b"Method Not Allowed"
    token = request.header("X-aliyun-ecs-metadata-token")
    if token:
        with state.lock:
            expires = _state(state).metadata_tokens.get(token, 0.0)
        if expires <= now:
            return 401, "text/plain", b"Unauthorized"
    prefix = "/latest/meta-data/ram/security-credentials/"
    if request.path == prefix:
        return 200, "text/plain", ECS_ROLE.encode()
    if request.path.startswith(prefix) and request.path[len(prefix):] == ECS_ROLE:
        key = issue(state, role_arn(ECS_ROLE), "ecs-instance", ECS_CREDENTIAL_LIFETIME)
        body = {"AccessKeyId": key.access_key_id, "AccessKeySecret": key.access_key_secret,
                "SecurityToken": key.security_token, "Expiration": _stamp(key.expires),
                "LastUpdated": _stamp(now), "Code": "Success"}
        return 200, "text/plain", json.dumps(body, indent=2).encode()
    return 404, "text/html", b"<html><body><h1>404 Not Found</h1></body></html>"
