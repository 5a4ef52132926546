"""Alibaba Cloud OpenAPI calls, shared by the DNS provider and the deployers.

Theory of operation
-------------------
Every Alibaba Cloud product used by the course (Alibaba Cloud DNS
``Alidns``, CDN ``Cdn``, API Gateway ``CloudAPI``, Certificate Management
Service ``cas``) speaks the same RPC style: one HTTPS request per *action*,
parameters in the query string, signed with HMAC-SHA1 over the sorted
parameters (``SignatureVersion`` 1.0) using the *access key secret*.  The
official ``aliyun-python-sdk-core`` does the signing; this module wraps it
so that the rest of acmelab gets:

* :class:`Credentials` -- ``AccessKeyId`` plus secret, from arguments or the
  environment; the secret never shows up in ``repr``, ``str``, logs or
  exception texts.
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
import os
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import certifi
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http import protocol_type
from aliyunsdkcore.request import AcsRequest, CommonRequest

from acmelab import __version__
from acmelab.errors import (
    AliyunAuthError,
    AliyunError,
    AliyunNetworkError,
    AliyunThrottled,
    InputError,
)

logger = logging.getLogger(__name__)

#: environment variables read for the AccessKeyId, first match wins
ACCESS_KEY_ID_ENV = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_ID")
#: environment variables read for the AccessKeySecret, first match wins
ACCESS_KEY_SECRET_ENV = ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIYUN_ACCESS_KEY_SECRET")

#: public endpoint of each product (RPC style; ``{region}`` is filled in).
#: The deployers may add products here.
DEFAULT_ENDPOINTS: dict[str, str] = {
    "alidns": "alidns.aliyuncs.com",
    "cdn": "cdn.aliyuncs.com",
    "cas": "cas.aliyuncs.com",
    "cloudapi": "apigateway.{region}.aliyuncs.com",
}

#: RAM policy a RAM user needs, per product, named in Forbidden.RAM messages.
RAM_POLICY_HINTS: dict[str, str] = {
    "alidns": ("the system policy AliyunDNSFullAccess, or a custom policy allowing "
               "alidns:AddDomainRecord, alidns:DeleteDomainRecord, alidns:DescribeDomains "
               "and alidns:DescribeSubDomainRecords"),
    "cdn": "the system policy AliyunCDNFullAccess (or a custom policy allowing cdn:SetCdnDomainSSLCertificate and cdn:DescribeDomainCertificateInfo)",
    "cloudapi": "the system policy AliyunApiGatewayFullAccess (or a custom policy allowing apigateway:SetDomainCertificate)",
    "cas": "the system policy AliyunYundunCertFullAccess (or a custom policy allowing yundun-cert:UploadUserCertificate)",
}

class _StringToSignFilter(logging.Filter):
    """The SDK logs every ServerException at ERROR.  For SignatureDoesNotMatch
    the text holds the server's StringToSign, which contains every parameter
    -- including POST body ones such as a certificate's private key (CAS, CDN).
    This filter, on the SDK's logger, cuts the StringToSign out."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "string to sign is:" in text.lower():
            record.msg = re.sub(r"(?i)(string to sign is:)\S*", r"\1<omitted by acmelab>", text)
            record.args = ()
        return True


_SDK_FILTER = _StringToSignFilter()
for _name in ("aliyunsdkcore.client", "aliyunsdkcore"):
    if _SDK_FILTER not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_SDK_FILTER)


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
# Credentials
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    """An Alibaba Cloud access key: ``access_key_id`` and ``access_key_secret``.

    ``repr()`` and ``str()`` show the AccessKeyId only; the secret is never
    printed.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.access_key_id, str) or not self.access_key_id.strip():
            raise InputError("the Alibaba Cloud AccessKeyId is empty")
        if not isinstance(self.access_key_secret, str) or not self.access_key_secret:
            raise InputError(f"the access key secret for AccessKeyId {self.access_key_id} is empty")

    def __str__(self) -> str:
        return f"AccessKeyId {self.access_key_id}"

    @classmethod
    def resolve(cls, access_key_id: str | None = None, access_key_secret: str | None = None,
                environ: Mapping[str, str] | None = None) -> "Credentials":
        """Credentials from the arguments, else from the environment.

        Reads ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``,
        then the SDK's ``ALIYUN_ACCESS_KEY_ID`` / ``ALIYUN_ACCESS_KEY_SECRET``.

        Raises:
            InputError: no AccessKeyId or no secret was found (the message
                names the variables to set).
        """
        environ = os.environ if environ is None else environ
        key_id = access_key_id or next((environ[n] for n in ACCESS_KEY_ID_ENV if environ.get(n)), None)
        secret = access_key_secret or next((environ[n] for n in ACCESS_KEY_SECRET_ENV if environ.get(n)), None)
        if not key_id:
            raise InputError("no Alibaba Cloud AccessKeyId: pass access_key_id or set "
                             + " / ".join(ACCESS_KEY_ID_ENV))
        if not secret:
            raise InputError(f"no access key secret for AccessKeyId {key_id}: pass access_key_secret or set "
                             + " / ".join(ACCESS_KEY_SECRET_ENV))
        return cls(key_id.strip(), secret)

    from_env = resolve


# --------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------

def _explain(code: str, server_message: str, *, action: str | None, product: str | None,
             access_key_id: str, params: Mapping[str, Any]) -> tuple[type[AliyunError], str, str]:
    """(error class, code, clear message) for an Alibaba error ``code``."""
    product_key = (product or "").lower()
    if code == "InvalidAccessKeyId.NotFound":
        return AliyunAuthError, code, (
            f"the AccessKeyId {access_key_id} does not exist (check ALIBABA_CLOUD_ACCESS_KEY_ID, "
            "and that the key was not deleted or copied from another account)")
    if code == "InvalidAccessKeyId.Inactive":
        return AliyunAuthError, code, f"the AccessKeyId {access_key_id} is disabled; enable it in the RAM console"
    if code in ("SignatureDoesNotMatch", "InvalidAccessKeySecret", "IncompleteSignature"):
        # The SDK renames SignatureDoesNotMatch to InvalidAccessKeySecret when
        # the server's StringToSign equals ours: then only the secret can differ.
        return AliyunAuthError, "SignatureDoesNotMatch", (
            f"the access key secret is wrong for this AccessKeyId ({access_key_id}): Alibaba Cloud "
            "computed a different HMAC-SHA1 signature; check ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if code.startswith("Forbidden"):
        policy = RAM_POLICY_HINTS.get(product_key, "a RAM policy that allows this action")
        return AliyunAuthError, code, (
            f"the RAM user of AccessKeyId {access_key_id} may not call {action or 'this action'}: "
            f"attach {policy}")
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
        credentials: the access key (:class:`Credentials`).
        region_id: the ``RegionId`` sent with every call (default ``"cn-hangzhou"``).
        endpoint: if given, *every* call goes to this host (``"host:port"``
            or ``"https://host:port"``), e.g. the lab's ``aliyun_endpoint``;
            otherwise each product's public endpoint (:data:`DEFAULT_ENDPOINTS`).
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

    def __init__(self, credentials: Credentials, *, region_id: str = "cn-hangzhou",
                 endpoint: str | None = None, verify: bool | str | Path = True,
                 timeout: float = 10.0, connect_timeout: float = 5.0,
                 max_retries: int = 5, backoff: float = 0.5, max_backoff: float = 8.0) -> None:
        from acmelab.client import checked_verify  # True or an existing CA bundle, else InputError

        verify = checked_verify(verify)
        self.credentials = credentials
        self.region_id = region_id
        self.endpoint = _host_of(endpoint) if endpoint else None
        # verify=True: the current certifi bundle, not the SDK's vendored (old) copy.
        self.verify: str = certifi.where() if verify is True else str(verify)
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._sdk = AcsClient(
            credentials.access_key_id, credentials.access_key_secret, region_id,
            auto_retry=False,                    # our own retry: throttling only, with back-off
            connect_timeout=connect_timeout, timeout=timeout,
            verify=self.verify,
        )
        self._sdk.append_user_agent("acmelab", __version__)

    def __repr__(self) -> str:
        return (f"AliyunClient({self.credentials.access_key_id!r}, region_id={self.region_id!r}, "
                f"endpoint={self.endpoint!r})")

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
        params = dict(request.get_query_params() or {})

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
        if not template:
            raise InputError(f"no default endpoint for product {product!r}; pass endpoint=")
        return template.format(region=self.region_id)

    def _redact(self, text: str) -> str:
        # Defence in depth: no code path puts the secret into a message, but a
        # server or a proxy might echo it.  (Very short secrets are not real
        # Alibaba secrets and would mangle ordinary words.)
        secret = self.credentials.access_key_secret
        return text.replace(secret, "***") if len(secret) >= 8 and secret in text else text

    def _map_server_exception(self, error: ServerException, action: str, product: str,
                              params: Mapping[str, Any]) -> AliyunError:
        code = str(error.get_error_code() or "Unknown")
        klass, code, message = _explain(
            code, self._redact(str(error.get_error_msg() or "")), action=action, product=product,
            access_key_id=self.credentials.access_key_id, params=params)
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
