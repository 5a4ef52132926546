# %% [markdown]
# # 08 · Solutions: A hand-signed Alibaba Cloud request
#
# Worked answers to the exercises of
# [08 · A hand-signed Alibaba Cloud request](../08_alibaba_signed_request.ipynb). Try each one
# yourself first; every answer below is computed, then handed to `check`. No secret is printed:
# the example's secret is made up, the lab's stays in its credentials object.
#
# **Previous:** [07 · Solutions](07_dns_challenge.ipynb) · **Next:** [09 · Solutions](09_finalize_and_download.ipynb)

# %%
import base64
import hashlib
import hmac
from urllib.parse import quote

from acmelab.exercises import ALIYUN_EXAMPLE, check


def percent(text: str) -> str:
    """Percent-encode all but the RFC 3986 unreserved characters."""
    return quote(text, safe="-_.~")


def canonical_query(parameters: dict) -> str:
    return "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(parameters.items()))

# %% [markdown]
# ## 08.1 · The V1 signature of the example
#
# StringToSign = `GET&%2F&` + the percent-encoded canonical query (every parameter but
# `Signature`, sorted); `Signature` = base64(HMAC-SHA1(secret + `&`, StringToSign)).

# %%
def sign(parameters: dict, secret: str) -> dict:
    unsigned = {k: v for k, v in parameters.items() if k != "Signature"}
    text = f"GET&{percent('/')}&{percent(canonical_query(unsigned))}"
    digest = hmac.new((secret + "&").encode(), text.encode(), "sha1").digest()
    return unsigned | {"Signature": base64.b64encode(digest).decode()}


mine = sign(dict(ALIYUN_EXAMPLE["params"]), ALIYUN_EXAMPLE["secret"])["Signature"]
print("Signature:", mine)
check("08.1", mine)

# %% [markdown]
# ## 08.2 · The V3 `Authorization` header of the example
#
# The canonical request is method, `/`, the action's query, the lower-case headers
# (`name:value`, sorted, each line ended), their names joined by `;`, and the hex SHA-256 of the
# empty body. StringToSign = `ACS3-HMAC-SHA256\n` + hex(SHA-256(canonical request)); the
# signature is hex(HMAC-SHA256(secret, StringToSign)) — the secret without `&`.

# %%
def sign_v3(query: dict, headers: dict, key_id: str, secret: str) -> str:
    names = sorted(headers)
    canonical = "\n".join(["GET", "/", canonical_query(query), "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                           ";".join(names), hashlib.sha256(b"").hexdigest()])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), "sha256").hexdigest()
    return f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={';'.join(names)},Signature={signature}"


authorization = sign_v3(ALIYUN_EXAMPLE["query"], ALIYUN_EXAMPLE["headers"], ALIYUN_EXAMPLE["params"]["AccessKeyId"],
                        ALIYUN_EXAMPLE["secret"])
print(authorization.replace(",", ",\n  "))
check("08.2", authorization)

# %% [markdown]
# ## 08.3 · The same `SignatureNonce` twice
#
# A `DescribeSubDomainRecords` call to the lab's endpoint, signed with the lab's access key,
# sent twice unchanged: the first is answered, the second refused with `SignatureNonceUsed` —
# a nonce is good once within 15 minutes, so a captured request cannot be replayed.

# %%
import datetime as dt
import uuid

import requests

from acmelab import course

alidns = course.dns_provider()
credentials = alidns.client.credentials          # the secret is used, never shown
zone, _ = alidns.find_zone(f"_acme-challenge.{course.target().domain}")
params = sign({"Action": "DescribeSubDomainRecords", "Version": "2015-01-09", "Format": "JSON",
               "DomainName": zone.domain_name, "SubDomain": f"_acme-challenge.{zone.domain_name}",
               "AccessKeyId": credentials.access_key_id, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
               "SignatureNonce": str(uuid.uuid4()),
               "Timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
              credentials.access_key_secret)
endpoint = alidns.client.endpoint or "alidns.aliyuncs.com"
answers = [requests.get(f"https://{endpoint}/", params=params, verify=alidns.client.verify, timeout=10)
           for _ in range(2)]
code = answers[1].json()["Code"]
print("first: HTTP", answers[0].status_code, "| second: HTTP", answers[1].status_code, code)
check("08.3", code)

# %% [markdown]
# **Previous:** [07 · Solutions](07_dns_challenge.ipynb) · **Next:** [09 · Solutions](09_finalize_and_download.ipynb) · Back to [08 · A hand-signed Alibaba Cloud request](../08_alibaba_signed_request.ipynb)
