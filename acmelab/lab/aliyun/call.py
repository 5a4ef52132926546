"""The lab's own way to call its Alibaba endpoint (V1-signed GET), for lab management.

The lab needs no client-side code to ask its endpoint something (e.g.
``AcmelabDescribeInventory`` for :meth:`acmelab.lab.LabInfo.inventory`):
:func:`call` signs with the same V1 functions the server checks
(:func:`acmelab.lab.aliyun.server.string_to_sign`, :func:`~acmelab.lab.aliyun.server.signature`)
and verifies TLS against the lab's CA.  The secret goes into the signature only.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from acmelab.errors import LabError
from acmelab.lab.aliyun.server import signature, string_to_sign


def call(endpoint: str, access_key_id: str, access_key_secret: str, ca_bundle: Path | str,
         action: str, version: str, params: dict[str, str] | None = None, *, timeout: float = 10) -> dict[str, Any]:
    """Call ``action`` (API ``version``) on the lab endpoint ``endpoint`` (``"localhost:8443"``).

    Returns:
        The JSON answer (dict, with ``RequestId``).

    Raises:
        LabError: the endpoint is unreachable or answered an error (its Code and Message).
    """
    query = {**(params or {}), "Action": action, "Version": version, "Format": "JSON",
             "AccessKeyId": access_key_id, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
             "SignatureNonce": str(uuid.uuid4()),
             "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    query["Signature"] = signature(access_key_secret, string_to_sign("GET", query))
    try:
        response = requests.get(f"https://{endpoint}/", params=query, verify=str(ca_bundle), timeout=timeout)
        answer = response.json()
    except (requests.RequestException, ValueError) as error:
        raise LabError(f"the lab's Alibaba endpoint at {endpoint} did not answer {action}: "
                       f"{type(error).__name__}") from None
    if response.status_code != 200:
        raise LabError(f"the lab's Alibaba endpoint refused {action}: {answer.get('Code')}: {answer.get('Message')}")
    return answer
