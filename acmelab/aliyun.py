"""Alibaba Cloud OpenAPI calls, shared by the DNS provider and the deployers.

Theory of operation
-------------------
Every Alibaba Cloud product used by the course (Alibaba Cloud DNS
``Alidns``, CDN ``Cdn``, API Gateway ``CloudAPI``, Certificate Management
Service ``cas``, Classic Load Balancer ``Slb``, STS ``Sts``) speaks the
same RPC style: one HTTPS request per *action*, parameters in the query
string, signed with HMAC-SHA1 over the sorted
parameters (``SignatureVersion`` 1.0) using the *access key secret*.  The
official ``aliyun-python-sdk-core`` does the signing; this module wraps it
so that the rest of acmelab gets:

* Credentials (:mod:`acmelab.aliyun_credentials`, importable from here
  too), each signed through the classic SDK's own signers, never showing a
  secret or token in ``repr``, ``str``, logs or exception texts:

  - :class:`Credentials` -- an AccessKey, or temporary STS credentials
    (``StsTokenCredential``; sent as ``SecurityToken``);
  - :class:`RamRoleArn` -- a RAM role assumed with an AccessKey (Sts
    2015-04-01 ``AssumeRole``), assumed again before it expires
    (``RamRoleArnCredential``);
  - :class:`EcsRamRole` -- the ECS instance's RAM role, from the instance
    metadata service (``EcsRamRoleCredential``);

  :func:`resolve_credentials` picks one (arguments, environment, the
  ``aliyun`` CLI's profiles).
* :class:`AliyunClient` -- an ``AcsClient`` that talks **HTTPS** (the SDK's
  default is plain HTTP), verifies TLS against the system store or a given
  CA bundle (the lab's), can send every call to one endpoint (the lab's
  ``localhost:8443``), and turns the SDK's ``ServerException`` /
  ``ClientException`` into :class:`acmelab.errors.AliyunError` subclasses with
  clear messages.  ``Throttling.User`` answers are retried with bounded
  exponential back-off.
* ``SignatureNonce`` is a random UUID (uuid4) on every call; the SDK's own
  nonce is an MD5 of the time, thread id, a counter and 64 random bits.

Two ways to call an action::

    client = AliyunClient(Credentials.from_env(), endpoint="localhost:8443",
                          verify=lab.ca_bundle)
    client.call("DescribeDomains", "2015-01-09", {"PageSize": "100"}, product="Alidns")
    client.send(AddDomainRecordRequest())   # an SDK request class

Both return the parsed JSON answer (dict).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import certifi
import requests
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.auth.credentials import EcsRamRoleCredential, RamRoleArnCredential, StsTokenCredential
from aliyunsdkcore.auth.signers.ecs_ram_role_signer import EcsRamRoleSigner
from aliyunsdkcore.auth.signers.ram_role_arn_signer import RamRoleArnSigner
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http import protocol_type
from aliyunsdkcore.request import AcsRequest, CommonRequest

from acmelab import __version__
from acmelab.aliyun_credentials import (ACCESS_KEY_ID_ENV, ACCESS_KEY_SECRET_ENV, COMMAND_PROFILE_ENV, CONFIG_FILE_ENV,
                                        ECS_METADATA_ENV, ECS_METADATA_URL, ECS_METADATA_URL_ENV, PROFILE_ENV,
                                        ROLE_ARN_ENV, ROLE_DURATION_RANGE, ROLE_SESSION_NAME_ENV, SECURITY_TOKEN_ENV,
                                        CredentialSource, Credentials, EcsRamRole, RamRoleArn, lab_endpoint,
                                        load_profile, resolve_credentials)
from acmelab.errors import (
    AliyunAuthError,
    AliyunError,
    AliyunNetworkError,
    AliyunThrottled,
    InputError,
)

#: the client, and the credential kinds of :mod:`acmelab.aliyun_credentials` (importable from here too)
__all__ = [
    "AliyunClient", "DEFAULT_ENDPOINTS", "INTERNATIONAL_ENDPOINTS", "RAM_SERVICES", "THROTTLING_CODES",
    "ram_policy_hint",
    "ACCESS_KEY_ID_ENV", "ACCESS_KEY_SECRET_ENV", "COMMAND_PROFILE_ENV", "CONFIG_FILE_ENV", "ECS_METADATA_ENV",
    "ECS_METADATA_URL", "ECS_METADATA_URL_ENV", "PROFILE_ENV", "ROLE_ARN_ENV", "ROLE_DURATION_RANGE",
    "ROLE_SESSION_NAME_ENV", "SECURITY_TOKEN_ENV", "CredentialSource", "Credentials", "EcsRamRole", "RamRoleArn",
    "lab_endpoint", "load_profile", "resolve_credentials",
]

logger = logging.getLogger(__name__)


#: public endpoint of each product (RPC style; ``{region}`` is filled in)
DEFAULT_ENDPOINTS: dict[str, str] = {
    "alidns": "alidns.aliyuncs.com",
    "cdn": "cdn.aliyuncs.com",
    "cas": "cas.aliyuncs.com",
    "cloudapi": "apigateway.{region}.aliyuncs.com",
    "slb": "slb.{region}.aliyuncs.com",
    "sts": "sts.aliyuncs.com",
}
#: the international site's endpoints where they differ (regions not ``cn-*``;
#: :mod:`acmelab.deploy.regions` explains the two sites)
INTERNATIONAL_ENDPOINTS: dict[str, str] = {
    "alidns": "alidns.ap-southeast-1.aliyuncs.com",
    "cdn": "cdn.ap-southeast-1.aliyuncs.com",
    "cas": "cas.ap-southeast-1.aliyuncs.com",
}

#: per product code: RAM's service namespace (the ``<namespace>:`` of an
#: ``Action`` in a RAM policy) and the system policy that allows all of it.
#: A ``Forbidden*`` answer names ``<namespace>:<the refused action>``.
RAM_SERVICES: dict[str, tuple[str, str]] = {
    "alidns": ("alidns", "AliyunDNSFullAccess"),
    "cdn": ("cdn", "AliyunCDNFullAccess"),
    "cloudapi": ("apigateway", "AliyunApiGatewayFullAccess"),
    "cas": ("yundun-cert", "AliyunYundunCertFullAccess"),
    "slb": ("slb", "AliyunSLBFullAccess"),
    "sts": ("sts", "AliyunSTSAssumeRoleAccess"),
}


def ram_policy_hint(product: str | None, action: str | None) -> str:
    """What to attach so that ``action`` of ``product`` is allowed, e.g.
    ``"the system policy AliyunCDNFullAccess, or a custom policy allowing
    cdn:DescribeCdnDomainDetail"`` (:data:`RAM_SERVICES`)."""
    service = RAM_SERVICES.get((product or "").lower())
    if service is None:
        return f"a RAM policy that allows {action or 'this action'}"
    namespace, system_policy = service
    allowing = f"{namespace}:{action}" if action else f"the {namespace}:* actions acmelab calls"
    return f"the system policy {system_policy}, or a custom policy allowing {allowing}"


class _SecretMaskingFilter(logging.Filter):
    """Masks what the classic SDK (and its vendored ``requests``/``urllib3``)
    may log:

    * every ServerException at ERROR: for SignatureDoesNotMatch the text holds
      the server's StringToSign, which contains every parameter -- including
      POST body ones such as a certificate's private key (CAS, CDN); it is cut;
    * at DEBUG, each call's parameters (``SecurityToken`` among them), the
      AssumeRole answer (``AccessKeySecret``, ``SecurityToken``), the request
      line with the full query string (vendored urllib3) and, with
      ``DEBUG=sdk``, every URL and header (``aliyunsdkcore.http.http_response``):
      the values of ``SecurityToken``, ``AccessKeySecret``,
      ``x-acs-security-token`` and ``Signature`` become ``***``.

    A logger's filters see only the records created on that logger, not
    those propagated from its children, so :func:`_mask_sdk_loggers` puts
    this filter on *every* ``aliyunsdkcore.*`` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = original = record.getMessage()
        if "string to sign is:" in text.lower():
            text = re.sub(r"(?i)(string to sign is:)\S*", r"\1<omitted by acmelab>", text)
        text = _SECRET_VALUES.sub(r"\1***", text)
        if text != original:
            record.msg = text
            record.args = ()
        return True


#: a SecurityToken, AccessKeySecret, x-acs-security-token or Signature value in
#: a query string, a header dump (``name : value``), a dict's repr or JSON
_SECRET_VALUES = re.compile(
    r"""((?:SecurityToken|AccessKeySecret|(?i:x-acs-security-token)|(?<![A-Za-z])Signature)"""
    r"""(?:=|['"]?\s*:\s*['"]?))[^&'"\s,}]*""")

_SDK_FILTER = _SecretMaskingFilter()


def _mask_sdk_loggers() -> None:
    """Attach :data:`_SDK_FILTER` to every logger of the classic SDK that
    exists now (the SDK's modules create theirs when imported: client, the
    signers, http_response, retry and the vendored requests/urllib3) and to
    ours.  Run at import and again by each :class:`AliyunClient`, for SDK
    modules imported later."""
    names = [name for name in list(logging.Logger.manager.loggerDict)
             if name == "aliyunsdkcore" or name.startswith("aliyunsdkcore.")]
    for name in [*names, __name__, "acmelab.aliyun_credentials"]:
        sdk_logger = logging.getLogger(name)
        if _SDK_FILTER not in sdk_logger.filters:
            sdk_logger.addFilter(_SDK_FILTER)


_mask_sdk_loggers()


class _Uuid4NonceHelper:
    """The classic SDK's ``parameter_helper`` with one change: ``get_uuid()``
    (the RPC composer's ``SignatureNonce``) is a random UUID (uuid4), not the
    SDK's MD5 of time, thread id, counter and ``random.getrandbits(64)``.
    Installed into ``rpc_signature_composer`` only, so every V1 call this
    process signs with ``aliyun-python-sdk-core`` carries a uuid4 nonce."""

    acmelab_uuid4_nonce = True

    def __init__(self, helper: Any) -> None:
        self._helper = helper

    def __getattr__(self, name: str) -> Any:
        return getattr(self._helper, name)

    @staticmethod
    def get_uuid() -> str:
        return str(uuid.uuid4())


if not getattr(rpc_signature_composer.helper, "acmelab_uuid4_nonce", False):
    rpc_signature_composer.helper = _Uuid4NonceHelper(rpc_signature_composer.helper)

#: error codes that mean "slow down"; retried with back-off
THROTTLING_CODES = frozenset({"Throttling", "Throttling.User", "Throttling.Api", "Throttling.System"})




# --------------------------------------------------------------------------
# The SDK's signers for temporary credentials, pointed where we say
# --------------------------------------------------------------------------

class _RamRoleArnSigner(RamRoleArnSigner):
    """The SDK's ``RamRoleArnSigner``; its ``AssumeRole`` call goes over
    HTTPS to our STS endpoint, with our ``DurationSeconds`` (the SDK fixes
    3600), ``Policy`` and ``ExternalId``, and is refreshed at 80 % of it."""

    def __init__(self, role: RamRoleArn, client: "AliyunClient") -> None:
        credential = RamRoleArnCredential(role.source.access_key_id, role.source.access_key_secret,
                                          role.role_arn, role.role_session_name)
        super().__init__(credential, self._assume_role)
        self._SESSION_PERIOD = role.duration_seconds
        self._role = role
        self._client = client

    def _assume_role(self, request: Any, signer: Any) -> Any:
        role = self._role
        host = _host_of(role.sts_endpoint) if role.sts_endpoint else self._client.endpoint or DEFAULT_ENDPOINTS["sts"]
        request.set_endpoint(host)
        request.set_domain(host)
        request.set_protocol_type(protocol_type.HTTPS)
        request.add_query_param("DurationSeconds", str(role.duration_seconds))
        if role.policy:
            request.add_query_param("Policy", role.policy)
        if role.external_id:
            request.add_query_param("ExternalId", role.external_id)
        logger.debug("AssumeRole %s (session %s, %d s) -> https://%s", role.role_arn, role.role_session_name,
                     role.duration_seconds, host)
        return self._client._sdk._implementation_of_do_action(request, signer)

    def secrets(self) -> tuple[str, ...]:
        session = getattr(self, "_session_credential", None)
        return tuple(session[1:]) if session else ()


class _EcsRamRoleSigner(EcsRamRoleSigner):
    """The SDK's ``EcsRamRoleSigner`` with the fetch replaced: our metadata
    URL (the SDK hard-codes 100.100.100.200 over ``urlopen`` without a
    timeout), hardened mode's token first, TLS verified for ``https://``,
    refreshed at 90 % of the time left until ``Expiration``."""

    def __init__(self, role: EcsRamRole) -> None:
        super().__init__(EcsRamRoleCredential(role.role_name or ""))
        self._role = role
        from acmelab.client import checked_verify
        verify = checked_verify(role.verify)
        self._verify = certifi.where() if verify is True else str(verify)

    def _get(self, session: requests.Session, path: str, token: str | None) -> requests.Response:
        headers = {"X-aliyun-ecs-metadata-token": token} if token else {}
        try:
            return session.get(self._role.metadata_url + path, headers=headers, timeout=self._role.timeout,
                               verify=self._verify)
        except requests.RequestException as error:
            raise AliyunNetworkError("MetadataService.Unreachable",
                                     f"the instance metadata service at {self._role.metadata_url} "
                                     f"did not answer ({type(error).__name__}); is this an ECS instance?",
                                     action="GetRoleCredentials") from None

    def _refresh_session_ak_and_sk(self) -> None:
        role = self._role
        base = role.metadata_url.rsplit("/meta-data/", 1)[0]
        with requests.Session() as session:
            token = None
            try:
                answer = session.put(base + "/api/token", headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "21600"},
                                     timeout=role.timeout, verify=self._verify)
                if answer.status_code == 200 and answer.text:
                    token = answer.text.strip()
            except requests.RequestException:
                pass
            if token is None and role.imds_v1_disabled:
                raise AliyunAuthError("MetadataService.TokenFailed", "the instance metadata service gave no "
                                      "token and the plain request is disabled", action="GetRoleCredentials")
            name = role.role_name
            if not name:
                listing = self._get(session, "ram/security-credentials/", token)
                name = listing.text.strip().splitlines()[0].strip() if listing.status_code == 200 and listing.text.strip() else ""
                if not name:
                    raise AliyunAuthError("MetadataService.NoRole", "this ECS instance has no RAM role attached",
                                          action="GetRoleCredentials")
                self._credential.role_name = name
            answer = self._get(session, f"ram/security-credentials/{name}", token)
        try:
            body = answer.json() if answer.status_code == 200 else {}
        except ValueError:
            body = {}
        if body.get("Code") != "Success" or not all(body.get(k) for k in ("AccessKeyId", "AccessKeySecret",
                                                                          "SecurityToken")):
            raise AliyunAuthError("MetadataService.RoleCredentialsFailed",
                                  f"the instance metadata service has no credentials for RAM role {name} "
                                  f"(HTTP {answer.status_code}, Code {body.get('Code', '-')}); is the role "
                                  "attached to this instance?", action="GetRoleCredentials")
        self._session_credential = body["AccessKeyId"], body["AccessKeySecret"], body["SecurityToken"]
        now = int(time.time())
        left = 3600
        try:
            expires = datetime.strptime(body.get("Expiration", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            left = max(60, int(expires.timestamp()) - now)
        except ValueError:
            pass
        self._SESSION_PERIOD = left
        self._last_update_time = now
        logger.debug("ECS RAM role %s: credentials %s until %s", name, body["AccessKeyId"], body.get("Expiration"))

    def secrets(self) -> tuple[str, ...]:
        session = getattr(self, "_session_credential", None)
        return tuple(session[1:]) if session else ()


# --------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------

def _explain(code: str, server_message: str, *, action: str | None, product: str | None,
             access_key_id: str, params: Mapping[str, Any]) -> tuple[type[AliyunError], str, str]:
    """(error class, code, clear message) for an Alibaba error ``code``."""
    if code == "InvalidAccessKeyId.NotFound":
        return AliyunAuthError, code, (
            f"the AccessKeyId {access_key_id} does not exist (check ALIBABA_CLOUD_ACCESS_KEY_ID, "
            "and that the key was not deleted or copied from another account)")
    if code == "InvalidSecurityToken.Expired":
        return AliyunAuthError, code, (
            f"the STS security token of AccessKeyId {access_key_id} has expired: get new temporary "
            f"credentials (AssumeRole, or refresh {SECURITY_TOKEN_ENV})")
    if code.startswith("InvalidSecurityToken") or code == "MissingSecurityToken":
        return AliyunAuthError, code, (
            f"Alibaba Cloud refused the STS security token sent with AccessKeyId {access_key_id} ({code}): "
            f"it must be the token issued together with that AccessKeyId; check {SECURITY_TOKEN_ENV}")
    if code == "SDK.GetSessionCredentialFailed":
        # the SDK's RamRoleArnSigner: "refresh session token failed, server return: <JSON answer>"
        try:
            answer = json.loads(server_message.split("server return:", 1)[1])
        except (IndexError, ValueError):
            answer = {}
        inner = str(answer.get("Code") or "AssumeRole failed")
        role = f" {params.get('RoleArn')}" if params.get("RoleArn") else ""
        klass = AliyunAuthError if inner.startswith(("EntityNotExist", "NoPermission", "InvalidAccessKeyId",
                                                      "SignatureDoesNotMatch", "Forbidden")) else AliyunError
        return klass, inner, (f"AssumeRole of the RAM role{role} with AccessKeyId {access_key_id} failed: "
                              f"{inner}: {answer.get('Message') or server_message}")
    if code == "InvalidAccessKeyId.Inactive":
        return AliyunAuthError, code, f"the AccessKeyId {access_key_id} is disabled; enable it in the RAM console"
    if code in ("SignatureDoesNotMatch", "InvalidAccessKeySecret", "IncompleteSignature"):
        # The SDK renames SignatureDoesNotMatch to InvalidAccessKeySecret when
        # the server's StringToSign equals ours: then only the secret can differ.
        return AliyunAuthError, "SignatureDoesNotMatch", (
            f"the access key secret is wrong for this AccessKeyId ({access_key_id}): Alibaba Cloud "
            "computed a different HMAC-SHA1 signature; check ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if code.startswith("Forbidden"):
        return AliyunAuthError, code, (
            f"the RAM user of AccessKeyId {access_key_id} may not call {action or 'this action'}: "
            f"attach {ram_policy_hint(product, action)}")
    if code in THROTTLING_CODES:
        return AliyunThrottled, code, f"Alibaba Cloud throttled {action or 'the call'} (too many requests): {server_message}"
    if code == "InvalidDomainName.NoExist":
        return AliyunError, code, (
            f"the domain {params.get('DomainName', '')!s} is not a zone of this Alibaba Cloud account "
            "(add it in the Alibaba Cloud DNS console, or check the name)")
    if code == "DomainRecordDuplicate":
        return AliyunError, code, "an identical DNS record (same RR, type, value and line) already exists"
    if code == "DomainRecordNotBelongToUser":
        return AliyunError, code, f"the DNS record {params.get('RecordId', '')!s} does not exist in this account"
    return AliyunError, code, server_message or "(no message)"


class AliyunClient:
    """A signed, HTTPS-only Alibaba Cloud RPC client on ``aliyun-python-sdk-core``.

    Args:
        credentials: :class:`Credentials` (an AccessKey or an STS token),
            :class:`RamRoleArn` or :class:`EcsRamRole` (see :func:`resolve_credentials`).
        region_id: the ``RegionId`` sent with every call (default ``"cn-hangzhou"``).
        endpoint: if given, *every* call goes to this host (``"host:port"``
            or ``"https://host:port"``), e.g. the lab's ``aliyun_endpoint``;
            otherwise each product's public endpoint (:data:`DEFAULT_ENDPOINTS`;
            for a region not ``cn-*``, the international site's
            :data:`INTERNATIONAL_ENDPOINTS` where they differ).
        verify: ``True`` (the ``certifi`` CA bundle) or the path of a CA bundle PEM (the
            lab's ``ca_bundle``).  Anything else (``False``, ``""``, ``0``,
            ``None``, a missing file) is refused: ``requests`` would treat a
            falsy value as "do not verify".
        timeout: read timeout per HTTP request, seconds.
        connect_timeout: connect timeout, seconds.
        max_retries: how many times a throttled call is retried before
            :class:`AliyunThrottled` is raised.
        backoff: first back-off delay in seconds; doubles per retry (with up
            to 25 % jitter), capped at ``max_backoff``.

    Raises:
        InputError: ``verify`` not True nor an existing CA bundle path, or an
            ``http://`` endpoint.
    """

    def __init__(self, credentials: CredentialSource, *, region_id: str = "cn-hangzhou",
                 endpoint: str | None = None, verify: bool | str | Path = True,
                 timeout: float = 10.0, connect_timeout: float = 5.0,
                 max_retries: int = 5, backoff: float = 0.5, max_backoff: float = 8.0) -> None:
        from acmelab.client import checked_verify  # True or an existing CA bundle, else InputError

        verify = checked_verify(verify)
        _mask_sdk_loggers()
        self.credentials = credentials
        self.region_id = region_id
        self.endpoint = _host_of(endpoint) if endpoint else None
        # verify=True: the current certifi bundle, not the SDK's vendored (old) copy.
        self.verify: str = certifi.where() if verify is True else str(verify)
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        options = dict(auto_retry=False,                 # our own retry: throttling only, with back-off
                       connect_timeout=connect_timeout, timeout=timeout, verify=self.verify)
        if isinstance(credentials, Credentials) and not credentials.security_token:
            self._sdk = AcsClient(credentials.access_key_id, credentials.access_key_secret, region_id, **options)
        elif isinstance(credentials, Credentials):
            self._sdk = AcsClient(region_id=region_id, credential=StsTokenCredential(
                credentials.access_key_id, credentials.access_key_secret, credentials.security_token), **options)
        elif isinstance(credentials, RamRoleArn):
            self._sdk = AcsClient(region_id=region_id, credential=RamRoleArnCredential(
                credentials.access_key_id, credentials.source.access_key_secret, credentials.role_arn,
                credentials.role_session_name), **options)
            self._sdk._signer = _RamRoleArnSigner(credentials, self)
        elif isinstance(credentials, EcsRamRole):
            self._sdk = AcsClient(region_id=region_id, credential=EcsRamRoleCredential(credentials.role_name or ""),
                                  **options)
            self._sdk._signer = _EcsRamRoleSigner(credentials)
        else:
            raise InputError(f"unsupported Alibaba Cloud credentials {type(credentials).__name__}")
        self._sdk.append_user_agent("acmelab", __version__)

    @classmethod
    def for_lab(cls, info: Any, credentials: CredentialSource | None = None, **options: Any) -> "AliyunClient":
        """A client for the lab's Alibaba endpoint (``info``: an
        :class:`acmelab.lab.LabInfo`): every call to ``info.aliyun_endpoint``,
        TLS verified with ``info.ca_bundle``, signed with ``credentials``
        (default: the lab's AccessKey).  ``options``: the other arguments of
        :class:`AliyunClient` (``region_id``, ``backoff``, ...).

        Raises:
            ConfigError: the lab runs without its Alibaba endpoint
                (``aliyun=False``; :func:`lab_endpoint`) -- nothing is sent.
        """
        endpoint = lab_endpoint(info)
        if credentials is None:
            credentials = Credentials(info.aliyun_access_key_id, info.aliyun_access_key_secret)
        return cls(credentials, endpoint=endpoint, verify=info.ca_bundle, **options)

    def __repr__(self) -> str:
        return (f"AliyunClient({self.credentials.access_key_id!r}, mode={self.credentials.mode!r}, "
                f"region_id={self.region_id!r}, endpoint={self.endpoint!r})")

    # -- public API ------------------------------------------------------
    def call(self, action: str, version: str, params: Mapping[str, Any] | None = None, *,
             product: str, endpoint: str | None = None, method: str = "POST") -> dict[str, Any]:
        """Call one RPC ``action`` of ``product`` (API ``version``) and return
        its JSON answer.

        Args:
            action: Alibaba's action name, e.g. ``"AddDomainRecord"``.
            version: API version, e.g. ``"2015-01-09"`` (Alidns).
            params: action parameters (values are sent as strings).
            product: product code, e.g. ``"Alidns"``, ``"Cdn"``, ``"CloudAPI"``, ``"cas"``.
            endpoint: host for this call only (overrides the client's).
            method: ``"POST"`` (default) or ``"GET"``.

        Returns:
            The parsed JSON response (dict, includes ``RequestId``).

        Raises:
            AliyunAuthError, AliyunThrottled, AliyunNetworkError, AliyunError.
        """
        request = CommonRequest(domain=None, version=version, action_name=action, product=product)
        request.set_method(method)
        for key, value in (params or {}).items():
            if value is not None:
                request.add_query_param(key, _text(value))
        return self.send(request, endpoint=endpoint)

    def send(self, request: AcsRequest, *, endpoint: str | None = None) -> dict[str, Any]:
        """Send an SDK request object (e.g. ``aliyunsdkalidns`` ``AddDomainRecordRequest``)
        over HTTPS to the right endpoint; same returns and errors as :meth:`call`."""
        product = request.get_product() or ""
        host = _host_of(endpoint) if endpoint else self.endpoint or self._default_endpoint(product)
        request.set_endpoint(host)
        if isinstance(request, CommonRequest):
            request.set_domain(host)
        request.set_protocol_type(protocol_type.HTTPS)
        request.set_accept_format("JSON")
        action = request.get_action_name()
        params = {k: v for k, v in (request.get_query_params() or {}).items() if k != "SecurityToken"}

        attempt = 0
        while True:
            logger.debug("Alibaba Cloud %s %s -> https://%s (AccessKeyId %s) params=%s",
                         product, action, host, self.credentials.access_key_id, params)
            try:
                body = self._sdk.do_action_with_exception(request)
            except ServerException as error:
                mapped = self._map_server_exception(error, action, product, params)
                if isinstance(mapped, AliyunThrottled) and attempt < self.max_retries:
                    delay = min(self.max_backoff, self.backoff * (2 ** attempt)) * (1 + random.random() / 4)
                    logger.info("%s throttled (%s), retry %d/%d in %.2f s",
                                action, mapped.code, attempt + 1, self.max_retries, delay)
                    time.sleep(delay)
                    attempt += 1
                    continue
                if isinstance(mapped, AliyunThrottled):
                    mapped = AliyunThrottled(mapped.code, f"{mapped.message} (gave up after {attempt} retries)",
                                             request_id=mapped.request_id, action=action,
                                             http_status=mapped.http_status)
                raise mapped from None
            except ClientException as error:
                raise self._map_client_exception(error, action, host) from None
            except (IndexError, KeyError, TypeError, ValueError, AttributeError) as error:
                # The SDK itself trips on unusual answers (e.g. a SignatureDoesNotMatch
                # message without ':'); report that instead of a bare traceback.
                raise AliyunError("SDK.InvalidResponse", f"the Alibaba Cloud SDK could not handle the answer "
                                  f"from {host} ({type(error).__name__})", action=action) from None
            try:
                answer = json.loads(body)
            except (ValueError, TypeError):
                raise AliyunError("InvalidResponse", f"the answer from {host} is not JSON",
                                  action=action) from None
            logger.debug("Alibaba Cloud %s answered RequestId %s", action, answer.get("RequestId"))
            return answer

    # -- helpers ----------------------------------------------------------
    def _default_endpoint(self, product: str) -> str:
        template = DEFAULT_ENDPOINTS.get(product.lower())
        if not self.region_id.startswith("cn-"):   # the international site
            template = INTERNATIONAL_ENDPOINTS.get(product.lower(), template)
        if not template:
            raise InputError(f"no default endpoint for product {product!r}; pass endpoint=")
        return template.format(region=self.region_id)

    def _redact(self, text: str) -> str:
        # Defence in depth: no code path puts the secret into a message, but a
        # server or a proxy might echo it.  (Very short secrets are not real
        # Alibaba secrets and would mangle ordinary words.)
        for secret in self._secrets():
            if len(secret) >= 8 and secret in text:
                text = text.replace(secret, "***")
        return text

    @property
    def signing_access_key_id(self) -> str:
        """The AccessKeyId calls are signed with: the AccessKey's, or a role's
        temporary ``STS.`` one once it has been fetched."""
        session = getattr(self._sdk._signer, "_session_credential", None)
        return str(session[0]) if session else self.credentials.access_key_id

    def _secrets(self) -> tuple[str, ...]:
        """Every secret this client knows: the AccessKey secret, the STS
        token, the temporary secret and token a role signer holds."""
        credentials = self.credentials
        known: list[str] = []
        if isinstance(credentials, Credentials):
            known += [credentials.access_key_secret, credentials.security_token or ""]
        elif isinstance(credentials, RamRoleArn):
            known.append(credentials.source.access_key_secret)
        signer_secrets = getattr(self._sdk._signer, "secrets", None)
        if callable(signer_secrets):
            known += signer_secrets()
        return tuple(k for k in known if k)

    def _map_server_exception(self, error: ServerException, action: str, product: str,
                              params: Mapping[str, Any]) -> AliyunError:
        code = str(error.get_error_code() or "Unknown")
        if isinstance(self.credentials, RamRoleArn):
            params = {**params, "RoleArn": self.credentials.role_arn}
        klass, code, message = _explain(
            code, self._redact(str(error.get_error_msg() or "")), action=action, product=product,
            access_key_id=self.signing_access_key_id, params=params)
        return klass(code, message, request_id=error.get_request_id(),
                     action=action, http_status=error.get_http_status())

    def _map_client_exception(self, error: ClientException, action: str, host: str) -> AliyunError:
        code = str(error.get_error_code() or "SDK.ClientError")
        message = self._redact(str(error.get_error_msg() or ""))
        if code in ("SDK.HttpError",):
            return AliyunNetworkError(code, f"cannot reach https://{host}: {message}", action=action)
        return AliyunError(code, message, action=action)


def _host_of(endpoint: str) -> str:
    """``"https://h:p/"`` or ``"h:p"`` -> ``"h:p"``; plain ``http://`` is refused."""
    endpoint = str(endpoint).strip()
    if endpoint.lower().startswith("http://"):
        raise InputError(f"refusing plain HTTP endpoint {endpoint!r}; Alibaba Cloud calls use HTTPS")
    if endpoint.lower().startswith("https://"):
        endpoint = endpoint[len("https://"):]
    endpoint = endpoint.rstrip("/")
    if not endpoint or "/" in endpoint:
        raise InputError(f"bad Alibaba Cloud endpoint {endpoint!r}; expected host or host:port")
    return endpoint


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
