# %% [markdown]
# # 16 · Fault drills: break it on purpose, read what the CA says, fix it
#
# **Goal:** meet the six failures an ACME client meets in production — a nonce storm, an
# answer lost after the CA acted, a TXT record not yet visible, a CAA record that forbids the
# CA, a CSR whose names differ from the order, a rate limit — each on purpose, in a lab of
# its own; read the CA's problem document; fix it; check yourself.
#
# **Needs:** nothing from earlier notebooks (notebooks 03–09 explain the requests). Every
# drill lab runs on free ports and is stopped at the end, so the course's lab is not touched.
#
# **Previous:** [15 · Go live: the checklist](15_go_live_checklist.ipynb) · Back to [00 · Start here](00_start_here.ipynb)

# %% [markdown]
# ## How a drill goes
#
# ```mermaid fault-drill
# flowchart LR
#     accTitle: One fault drill
#     break["break it<br/>(a lab knob, the fault proxy,<br/>a DNS record, a wrong CSR)"] --> read["read what the CA says<br/>problem type, status, detail,<br/>Retry-After"]
#     read --> fix["fix it<br/>(what the client does,<br/>or what you change)"]
#     fix --> check["check('16.N', answer)"]
# ```
#
# The faults come from real components: Pebble's own knobs, the lab's DNS and Alibaba DNS
# endpoint, and `acmelab.lab.faultproxy.FaultProxy` — an HTTPS proxy in front of the real
# Pebble that can lose an answer after Pebble acted, or refuse with `429` and `Retry-After`.
# `said(exc)` prints what a caught error carries, without anything that changes between runs.

# %%
import tempfile
import time
from pathlib import Path

from acmelab import display, keys
from acmelab.client import AcmeClient
from acmelab.csr import make_csr
from acmelab.dns.alidns import AlidnsProvider
from acmelab.dns.challtestsrv import ChallTestSrvProvider
from acmelab.errors import AcmelabError, AcmeProblem, ChallengeFailed
from acmelab.exercises import check
from acmelab.issue import authorize_order
from acmelab.lab import Lab, LabPorts
from acmelab.lab.challtestsrv import ChallTestSrv
from acmelab.lab.faultproxy import FaultProxy


def said(exc):
    """The parts of an error a client acts on (no nonce, no URL)."""
    problem = exc.problem if isinstance(exc, ChallengeFailed) else exc
    if isinstance(problem, AcmeProblem):
        status = f", HTTP {problem.status}" if problem.status else " (in the authorization)"
        print(f"{type(exc).__name__}: problem {problem.name!r}{status}")
        print(f"  detail: {problem.detail.split(':')[0] if problem.name == 'badNonce' else problem.detail}")
    else:
        print(display.error(exc))


def authorized_order(client, dns, names):
    """An order for ``names`` whose dns-01 authorizations are valid (records removed):
    :func:`acmelab.issue.authorize_order`, the steps of notebooks 06-07."""
    return authorize_order(client, client.new_order(names), dns)


# the drill lab: no random badNonce, no authorization reuse, Alibaba DNS 4 s behind its API
lab = Lab(None, ports=LabPorts.free(), pebble_env={"PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"},
          dns_propagation_delay=4)
info = lab.start()
proxy = FaultProxy(info, Path(tempfile.mkdtemp(prefix="drill-proxy-")))
client = AcmeClient(proxy.directory_url, keys.generate_key("ec256"), verify=proxy.ca_bundle)
client.new_account()
fast_dns = ChallTestSrvProvider.for_lab(info)  # the lab DNS itself: visible at once
print("drill lab up; account made through the fault proxy:", client.account_url.startswith(proxy.origin))

# %% [markdown]
# ## Drill 1 · A nonce storm
#
# **Break it.** `PEBBLE_WFE_NONCEREJECT=100` makes Pebble reject *every* nonce with `badNonce`
# (RFC 8555 §6.5), as a CA whose nonce store was just wiped would for a while. Each rejection
# carries a fresh `Replay-Nonce`; the client signs again with it, for at most 30 s or 200
# retries (`acmelab.transport.BAD_NONCE_RETRIES`), then gives up with the CA's problem:

# %%
with Lab(None, ports=LabPorts.free(), aliyun=False, pebble_env={"PEBBLE_WFE_NONCEREJECT": "100"}) as storm:
    victim = AcmeClient(storm.directory_url, keys.generate_key("ec256"), verify=storm.ca_bundle)
    try:
        victim.new_account()
    except AcmelabError as exc:
        storm_error = exc
        said(exc)
        print("requests sent before giving up: more than 50:", victim.request_count > 50)
    victim.close()

# %% [markdown]
# **Fix it.** A real storm rejects *some* nonces. With half rejected, a client that retries
# with the nonce from the error (not with a fresh `newNonce` each time, and not forever) gets
# every request through; the only trace is the extra requests:

# %%
with Lab(None, ports=LabPorts.free(), aliyun=False, pebble_env={"PEBBLE_WFE_NONCEREJECT": "50"}) as storm:
    survivor = AcmeClient(storm.directory_url, keys.generate_key("ec256"), verify=storm.ca_bundle)
    survivor.new_account()
    statuses = {survivor.fetch_account().status for _ in range(20)}
    print("21 signed requests went through:", statuses == {"valid"})
    print("and took more than 21 requests (badNonce retries):", survivor.request_count > 23)
    survivor.close()

check("16.1", ...)  # the problem type a nonce storm answers  # solution: storm_error

# %% [markdown]
# ## Drill 2 · An answer lost after the CA acted
#
# **Break it.** The proxy forwards `newOrder` to Pebble — Pebble creates the order — then
# drops the connection: the client never hears `201 Created`. A client that treats newOrder
# as safe to repeat sends it again, and the CA now holds **two** orders for one job (at Let's
# Encrypt each counts against the 300-new-orders-per-3-hours limit):

# %%
def orders_for(names):
    orders = [client.fetch_order(url) for url in client.list_orders()]
    return [order for order in orders if sorted(order.names) == sorted(names)]


proxy.lose_answer("POST", "/order-plz")
payload = {"identifiers": [{"type": "dns", "value": "blind.example.com"}]}
client.transport.post(client.directory.newOrder, payload, client.account_key, kid=client.account_url,
                      idempotent=True)  # wrong on purpose: newOrder is not idempotent
blind = orders_for(["blind.example.com"])
print("orders the CA holds for blind.example.com:", len(blind))

# %% [markdown]
# **Fix it.** `AcmeClient.new_order` knows that newOrder must not be done twice: after a lost
# answer it first asks the CA for the account's orders (RFC 8555 §7.1.2.1), takes the order it
# finds, and sends again only if the CA did not act:

# %%
proxy.lose_answer("POST", "/order-plz")
order = client.new_order(["careful.example.com"])
print("order status:", order.status)
print("orders the CA holds for careful.example.com:", len(orders_for(["careful.example.com"])))

check("16.2", ...)  # orders the CA holds after the blind repeat  # solution: len(blind)

# %% [markdown]
# ## Drill 3 · A TXT record not yet propagated
#
# **Break it.** Alibaba Cloud DNS answers `AddDomainRecord` at once, but its name servers see
# the record a little later (here: 4 s). Tell the CA "ready" right after the API call, and the
# CA looks before the record is there. An authorization fails for good: this order is lost.

# %%
alidns = AlidnsProvider.for_lab(info)
order = client.new_order(["hasty.example.com"])
authorization = client.fetch_authorization(order.authorizations[0])
challenge = authorization.challenge("dns-01")
record = client.dns01_name(authorization), client.dns01_txt_value(challenge)
alidns.present(*record)
try:
    client.answer_challenge(challenge)  # too early
    client.poll_authorization(authorization)
except ChallengeFailed as exc:
    propagation_error = exc
    said(exc)
finally:
    alidns.cleanup(*record)
print("order now:", client.fetch_order(order.url).status)

# %% [markdown]
# **Fix it.** Wait until every authoritative server answers the value, *then* answer the
# challenge (`issue_certificate` does this, `propagation_timeout`), in a new order:

# %%
order = client.new_order(["patient.example.com"])
authorization = client.fetch_authorization(order.authorizations[0])
challenge = authorization.challenge("dns-01")
record = client.dns01_name(authorization), client.dns01_txt_value(challenge)
alidns.present(*record)
started = time.monotonic()
try:
    alidns.wait_until_visible(*record, timeout=30)
    print("visible after 3 s or more:", time.monotonic() - started >= 3)
    client.answer_challenge(challenge)
    print("authorization:", client.poll_authorization(authorization).status)
finally:
    alidns.cleanup(*record)

check("16.3", ...)  # the problem type of the too-early authorization  # solution: propagation_error

# %% [markdown]
# ## Drill 4 · A CAA record that forbids the CA
#
# **Break it.** A CAA record (RFC 8659) says which CAs may issue for a name: `issue
# "letsencrypt.org"` allows Let's Encrypt and no one else. The CA looks up the **closest**
# record set, walking up from the name to its parents, and compares its own identity (the
# directory's `meta.caaIdentities`) with the `issue` values — `issuewild` instead for a
# wildcard; an `iodef` record alone restricts nothing. Let's Encrypt refuses with the problem
# `caa`. Pebble does **not** check CAA (its validation has no CAA lookup), so in the lab we
# run the CA's check ourselves, against the lab DNS, before ordering:

# %%
import dns.resolver


def caa_records(name):
    """The closest CAA record set at or above ``name``: [(tag, value), ...]."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [info.dns_server[0]], info.dns_server[1]
    labels = name.rstrip(".").split(".")
    for index in range(len(labels) - 1):
        try:
            answer = resolver.resolve(".".join(labels[index:]), "CAA")
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            continue
        return sorted((record.tag.decode(), record.value.decode()) for record in answer)
    return []


def caa_allows(records, identity, wildcard=False):
    """Whether the record set lets the CA ``identity`` issue (RFC 8659 §4)."""
    tag = "issuewild" if wildcard and any(t == "issuewild" for t, _ in records) else "issue"
    values = [value for t, value in records if t == tag]
    if not values:
        return True  # no issue/issuewild property: any CA may issue
    return any(value.split(";")[0].strip() == identity for value in values)


identity = client.directory.meta["caaIdentities"][0]
testsrv = ChallTestSrv(info.challtestsrv_url)
testsrv.add_caa("caa.example.com", [{"tag": "issue", "value": "letsencrypt.org"}])
print("the lab CA's identity:", identity)
print("CAA at caa.example.com:", caa_records("www.caa.example.com"))
print("may the lab CA issue for www.caa.example.com?", caa_allows(caa_records("www.caa.example.com"), identity))

# %% [markdown]
# **Fix it.** The domain's owner adds the CA's identity (an `accounturi` parameter, RFC 8657,
# would narrow it to one account). Then the check passes and the order goes through:

# %%
testsrv.clear_caa("caa.example.com")
testsrv.add_caa("caa.example.com", [{"tag": "issue", "value": f"{identity}; accounturi={client.account_url}"}])
print("may the lab CA issue now?", caa_allows(caa_records("www.caa.example.com"), identity))
print("order:", authorized_order(client, fast_dns, ["www.caa.example.com"]).status)
testsrv.clear_caa("caa.example.com")

check("16.4", ...)  # your caa_allows, tried on CAA record sets  # solution: caa_allows

# %% [markdown]
# ## Drill 5 · A CSR whose names differ from the order
#
# **Break it.** The CSR at finalize must name exactly the order's identifiers (RFC 8555 §7.4).
# `AcmeClient.finalize` refuses a mismatch before sending anything; sent by hand, the CA
# refuses it (Pebble answers `unauthorized`; other CAs say `badCSR`), and the order stays
# `ready`:

# %%
from cryptography.hazmat.primitives import serialization

from acmelab.jws import b64url

order = authorized_order(client, fast_dns, ["csr.example.com"])
wrong = make_csr(keys.generate_key("ec256"), ["other.example.com"])
try:
    client.finalize(order, wrong)
except AcmelabError as exc:
    print(display.error(exc))
try:
    client.transport.post(order.finalize, {"csr": b64url(wrong.public_bytes(serialization.Encoding.DER))},
                          client.account_key, kid=client.account_url)
except AcmelabError as exc:
    csr_error = exc
    said(exc)
print("order now:", client.fetch_order(order.url).status)

# %% [markdown]
# **Fix it.** A CSR for the order's own names (and a fresh certificate key):

# %%
right = make_csr(keys.generate_key("ec256"), order.names)
print("order:", client.finalize(order, right).status)

check("16.5", ...)  # the problem type of the mismatched CSR  # solution: csr_error

# %% [markdown]
# ## Drill 6 · A rate limit with `Retry-After`
#
# **Break it.** The proxy answers newOrder with `429 Too Many Requests`, a `rateLimited`
# problem and `Retry-After: 3600` (seconds; it may also be an HTTP date). Waiting an hour in a
# loop is no fix: the client raises `RateLimited` at once, with `retry_after` in seconds, for
# the caller to reschedule (a renewal inside the ARI window is exempt at Let's Encrypt):

# %%
proxy.refuse("POST", "/order-plz", status=429, retry_after="3600")
try:
    client.new_order(["busy.example.com"])
except AcmelabError as exc:
    rate_error = exc
    said(exc)
    print("retry_after:", rate_error.retry_after, "seconds")

# %% [markdown]
# **Fix it.** Come back after `Retry-After`, not before. A short one (up to 10 s,
# `acmelab.transport.RETRY_AFTER_MAX_WAIT`) the client waits out itself:

# %%
proxy.refuse("POST", "/order-plz", status=429, retry_after="2")
started, since = time.monotonic(), time.time()
order = client.new_order(["busy.example.com"])
print("order:", order.status, "| waited 2 s or more:", time.monotonic() - started >= 2)
print("newOrder requests that reached Pebble:", len([e for e in proxy.requests("POST", "/order-plz")
                                                     if e.upstream_status is not None and e.at >= since]))

check("16.6", ...)  # seconds to wait after the 429  # solution: rate_error.retry_after

# %% [markdown]
# ## Summary
#
# * `badNonce` is normal: retry with the error's nonce, a bounded number of times.
# * A lost answer does not mean nothing happened: before repeating what must not be done twice
#   (newOrder, keyChange), ask the CA.
# * "Published" is not "visible": wait for every authoritative server before answering.
# * CAA: the closest record set counts, `issuewild` for wildcards; check it before ordering.
# * The CSR names exactly the order's identifiers; the client checks before sending.
# * `429`/`503` with `Retry-After`: wait that long — or reschedule — never hammer.
#
# ## Exercises
#
# 1. Drill 4 for a wildcard: put `issuewild ";"` (no CA may issue wildcards) next to the
#    `issue` record and assert that `caa_allows(records, identity, wildcard=True)` is False
#    while `www.caa.example.com` is still allowed.
# 2. Drill 6 with an HTTP date: `proxy.refuse(..., retry_after=faultproxy.http_date(7200))`;
#    assert that `rate_error.retry_after` is within a few seconds of 7200.
#
# **Previous:** [15 · Go live: the checklist](15_go_live_checklist.ipynb) · Back to [00 · Start here](00_start_here.ipynb)

# %%
proxy.stop()
client.close()
lab.stop()
print("drill lab stopped")
