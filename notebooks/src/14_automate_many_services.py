# %% [markdown]
# # 14 · Automate many services
#
# **Goal:** everything of notebooks 06–10 in **one call** — first for one certificate, then for
# many services at once from a small services file (issue, install on CDN / API Gateway /
# CAS, prove with a TLS handshake, renew when due). Leaving the lab is the next notebook.
#
# **Needs:** the lab (started if needed) and the course's account from
# [05](05_account.ipynb) (created now if it is missing). Everything else is made here.
#
# **Previous:** [13 · Revocation and the account's life cycle](13_revocation_and_account_lifecycle.ipynb) · **Next:** [15 · Go live: the checklist](15_go_live_checklist.ipynb)

# %% [markdown]
# ## One certificate, one call
#
# `acmelab.issue.issue_certificate` strings together what notebooks 06–09 did step by step:
#
# 1. `newOrder` for the names (§7.4); fetch each authorization — one the CA reused is already
#    `valid` and needs nothing;
# 2. publish every dns-01 TXT record through the DNS provider, wait until each is visible;
# 3. answer each challenge, poll each authorization until `valid`;
# 4. finalize with a CSR for a fresh certificate key, download the (preferred) chain;
# 5. remove every TXT record it published — on success, on failure, and on Ctrl-C.

# %%
from acmelab import course, display
from acmelab.issue import issue_certificate

client = course.account_client()   # the course's account (notebook 05)
domain = course.target().domain
issued = issue_certificate([f"www.{domain}", domain], client=client, dns=course.dns_provider(),
                           key_type="ec256")
print("issued for the course's account:", client.account_url == course.recall("account_url"))

# %% [markdown]
# What came back: the names, the serial, the expiry and the chain (the private key stays in
# memory, `issued.private_key`, and is never shown):

# %%
print("names:     ", ", ".join(issued.names))
print("serial:    ", issued.serial_hex)
print("not after: ", f"{issued.not_after:%Y-%m-%d %H:%M:%S}")
display.chain(issued.chain_pem, title="the chain (the key stays in memory: issued.private_key)")

# %% [markdown]
# The DNS zone is as clean as before — `issue_certificate` removed what it published:

# %%
alidns = course.dns_provider()
for name in (f"_acme-challenge.www.{domain}", f"_acme-challenge.{domain}"):
    zone, _ = alidns.find_zone(name)
    print(name, "->", len([r for r in alidns.sub_domain_records(zone, name) if r["Type"] == "TXT"]), "TXT records")

# %% [markdown]
# ### A name whose `_acme-challenge` is delegated
#
# The same call works for a name whose `_acme-challenge` is a CNAME into another zone
# (notebook 07): the provider writes the TXT record at the end of the chain, where the CA
# looks, and removes it there. The zone owner sets the CNAME once; the renewal job's RAM
# policy (notebook 15) then needs record access to the delegated zone only. Here the CNAME
# is made for the demonstration and removed afterwards; `check_names` runs before the order:

# %%
delegated_name, target = f"shop.{domain}", "_acme-challenge.shop.example.net"
made = alidns.client.call("AddDomainRecord", "2015-01-09", {"DomainName": domain, "RR": "_acme-challenge.shop",
                                                            "Type": "CNAME", "Value": target}, product="Alidns")
try:
    print(f"_acme-challenge.{delegated_name} -> {alidns.record_name(f'_acme-challenge.{delegated_name}')}")
    alidns.check_names([delegated_name])
    shop = issue_certificate([delegated_name], client=client, dns=alidns)
    print("issued for:", ", ".join(shop.names))
    zone, _ = alidns.find_zone(target)
    print(f"TXT records left at {target}:",
          len([r for r in alidns.sub_domain_records(zone, target) if r["Type"] == "TXT"]))
finally:
    alidns.client.call("DeleteDomainRecord", "2015-01-09", {"RecordId": made["RecordId"]}, product="Alidns")

# %% [markdown]
# ## Many services: the services file
#
# A company has more than one certificate. Each **service** is a set of names that must be
# served with a valid certificate from somewhere — CDN accelerated domains, API Gateway custom
# domains, a copy in Certificate Management Service (CAS). The services file (TOML) says which.
#
# **CAS** (Certificate Management Service, API product `cas`) is Alibaba Cloud's certificate
# store: `UploadUserCertificate` keeps chain and key under a `CertId`, and other products (CDN,
# SLB, WAF, …) can then be pointed at that `CertId` instead of receiving the PEM themselves —
# one upload, many users, and one place to see every certificate's expiry.
#
# ```mermaid apply
# flowchart LR
#     file["services.toml"] --> engine["acmelab apply<br/>(acmelab.services)"]
#     engine --> s1["www: cdn + static<br/>-> 2 CDN domains"]
#     engine --> s2["api: api<br/>-> API Gateway + CAS"]
#     engine --> s3["dev: api.dev + cdn.dev<br/>(own DNS zone) -> API Gateway + CDN"]
#     s1 & s2 & s3 --> steps["per service: issue if needed (dns-01)<br/>-> install -> TLS handshake shows the serial"]
# ```

# %% [markdown]
# The course's services file, for its domain and API Gateway group (`course.services_toml`;
# notebook 15 takes the same file live):

# %%
services_toml = course.services_toml()
print(services_toml.strip())

# %%
import tomllib

from acmelab.config import parse_services   # the services file: acmelab/config.py

wanted = parse_services(tomllib.loads(services_toml), source="services.toml")
group = f"{course.api_group_id()}/"   # dropped from target ids, to keep the tables narrow
display.table([[s.name, ", ".join(s.domains), display.target_ids((t.id for t in s.install), drop=group)]
               for s in wanted], header=["service", "certificate names", "install on"])

# %% [markdown]
# ## Apply it
#
# The engine needs to know *where*: the ACME account, the lab (for DNS, the Alibaba Cloud
# endpoint and the TLS edges) and the roots a served chain must lead to. It keeps what it issued
# in a **state directory** — keys (0600), chains, and where each certificate is installed — so
# a second run knows what is already done. This demo uses a fresh one in a temporary folder;
# the `acmelab` command uses `~/.acmelab` (`StateDir`). That is a different store from the
# course folder `notebooks/course/` the notebooks used so far: the course folder holds the
# lessons' keys and certificates, the state directory what `acmelab` manages in production.
#
# Services are worked on in parallel (three at a time here); one failing service does not
# stop the others.

# %%
import tempfile
from pathlib import Path

from acmelab.backends import Environment   # where the engine works: acmelab/backends.py
from acmelab.engine import apply_services   # the engine: acmelab/engine.py
from acmelab.state import StateDir

workdir = tempfile.TemporaryDirectory(prefix="acmelab-12-")
state = StateDir(Path(workdir.name) / "state")
environment = Environment.for_backend(course.backend(), course.account_key(), client.account_url)
print("state directory: <tmp>/state, certificates in it:", len(state.certificate_names()))

# %% [markdown]
# Apply the services. `display.service_results` shows one row per service: what happened,
# why, where it was installed, and where a TLS handshake then showed the new serial:

# %%
results = apply_services(wanted, environment, state, concurrency=3)
display.service_results(results, drop=group)

# %% [markdown]
# Every target was installed, and every target with an edge was proven by a handshake that
# showed the new serial. `cas` is missing from the "TLS verified" column on purpose: CAS only
# stores the certificate; there is no endpoint of its own to handshake with.
# The state directory now holds one folder per certificate:

# %%
for name in state.certificate_names():
    managed = state.certificate(name)
    print(f"{name:4} {', '.join(managed.names):42} key {managed.key_type}, installed on {len(managed.installed)} targets")

# %% [markdown]
# ## Run it again: nothing to do
#
# The same file applied again changes nothing: each certificate is valid and far from due, and
# each target still serves it (the handshake checks that; a target serving something else would
# be installed again). That makes `apply` safe to run from a daily timer. This time through the
# command line — the same engine; `--json` gives a machine-readable summary:

# %%
import sys

services_file = Path(workdir.name) / "services.toml"
services_file.write_text(services_toml)
target = course.target()
command = [str(Path(sys.executable).parent / "acmelab"), "apply", str(services_file),
           "--directory", "lab" if target.lab else target.directory_url,
           "--state-dir", str(state.root), "--json", "--quiet"]
if target.environment == "production":
    command.append("--i-mean-production")
shown = " ".join(["acmelab", *command[1:]])
print("$", shown.replace(str(services_file), "services.toml").replace(str(state.root), "<state>"))

# %% [markdown]
# Run it, and read the JSON it prints:

# %%
import json
import subprocess

run = subprocess.run(command, capture_output=True, text=True)
summary = json.loads(run.stdout)
print("exit status:", run.returncode)

# %%
display.table([[s["name"], s["status"], display.target_ids(s["installed"], drop=group),
                display.target_ids(s["verified"], drop=group)] for s in summary["services"]],
              header=["service", "status", "installed", "TLS verified"])

# %% [markdown]
# ## Renewal
#
# A certificate is due once the moment the engine picked inside the CA's ARI window has come,
# or, without ARI, when less than a third of its lifetime is left (notebook 12). To see a
# renewal without waiting two months for the 90-day `classic` certificates, we tell the engine
# what time it is: 10 days before the certificates expire, due by either rule. (The engine
# asks ARI first and uses the lifetime rule only without a usable answer; the lab's Pebble
# suggests a window that is open by then, so the reason below names it.) Every service is
# renewed with `replaces` naming its old certificate — inside the window, so at Let's Encrypt
# exempt from the rate limits — and the new certificate
# installed and proven wherever the old one was. (The command line has `--now` for the same
# test, and `acmelab renew` for the daily job.)

# %%
import datetime as dt

soonest = min(state.certificate(name).not_after for name in state.certificate_names())
results = apply_services(wanted, environment, state, concurrency=3,
                                  now=soonest - dt.timedelta(days=10))
display.service_results(results, drop=group)

# %% [markdown]
# The demo is done: its temporary folder — `services.toml` and the state directory, keys
# included — goes away. (For exercise 3, run it before this cell, or write `services.toml`
# again and pass a `--state-dir` of your own.)

# %%
workdir.cleanup()  # the demo's state directory (keys included) goes away

# %% [markdown]
# ## Summary
#
# * `issue_certificate` is notebooks 06–09 in one call, with cleanup on every path.
# * `acmelab.engine.apply_services` / `acmelab apply` take a services file: issue when needed, install on
#   CDN, API Gateway and CAS, prove each install with a TLS handshake, renew when a third of the
#   lifetime is left; idempotent, so it can run daily.
#
# ## Exercises
#
# 1. Add a service for `cdn.example.org` (another zone of the lab account) to the services file
#    and apply again: `check("14.1", [s["status"] for s in summary["services"]])`.
# 2. Break one service on purpose — an API Gateway `group_id` that does not exist — and apply:
#    `check("14.2", status_of_the_broken_one)`.
# 3. Write the systemd timer (or cron line) that would run `acmelab renew` every day.

# %%
from acmelab.exercises import check

check("14.1", ...)  # the list of statuses
check("14.2", ...)  # the broken service's status

# %% [markdown]
# **Previous:** [13 · Revocation and the account's life cycle](13_revocation_and_account_lifecycle.ipynb) · **Next:** [15 · Go live: the checklist](15_go_live_checklist.ipynb)
