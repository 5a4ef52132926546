# %% [markdown]
# # 14 · Solutions: Automate many services
#
# Worked answers to the exercises of [14 · Automate many services](../14_automate_many_services.ipynb).
# Try each one yourself first; every answer below is computed against the lab, then handed to
# `check`. The services live in a throw-away state directory.
#
# **Previous:** [13 · Solutions](13_revocation_and_account_lifecycle.ipynb) · **Next:** [15 · Solutions](15_go_live_checklist.ipynb)

# %%
import tempfile
import tomllib
from pathlib import Path

from acmelab import course
from acmelab.backends import Environment
from acmelab.config import parse_services
from acmelab.engine import apply_services
from acmelab.exercises import check
from acmelab.state import StateDir

client = course.account_client()   # the course's account (notebook 05)
domain = course.target().domain
workdir = tempfile.TemporaryDirectory(prefix="acmelab-solutions-14-")
state = StateDir(Path(workdir.name) / "state")
environment = Environment.for_backend(course.backend(), course.account_key(), client.account_url)


def apply(toml: str) -> list:
    wanted = parse_services(tomllib.loads(toml), source="services.toml")
    return apply_services(wanted, environment, state, concurrency=3)

# %% [markdown]
# ## 14.1 · One more service
#
# Two services are applied, then a third is added for `cdn.example.org` (a CDN domain in the
# lab account's `example.org` zone) and everything is applied again. Only the new service is
# worked on (`issued`, installed and verified); the others are `unchanged`: not due, same
# names, same key type.

# %%
two = f"""
[[service]]
name = "one"
domains = ["one.{domain}"]

[[service]]
name = "two"
domains = ["two.{domain}"]
"""
three = two + """
[[service]]
name = "org"
domains = ["cdn.example.org"]
cdn = "cdn.example.org"
"""
print([result.status for result in apply(two)])
statuses = [result.status for result in apply(three)]
print(statuses)
check("14.1", statuses)

# %% [markdown]
# Notebook 10 uses `cdn.example.org` as the CDN domain *without* a certificate, so we turn its
# HTTPS off again (`SetCdnDomainSSLCertificate` with `SSLProtocol=off`):

# %%
aliyun = course.aliyun_client()
aliyun.call("SetCdnDomainSSLCertificate", "2018-05-10", {"DomainName": "cdn.example.org", "SSLProtocol": "off"},
            product="Cdn")
info = aliyun.call("DescribeDomainCertificateInfo", "2018-05-10", {"DomainName": "cdn.example.org"}, product="Cdn")
print("cdn.example.org:", [c.get("ServerCertificateStatus") for c in info["CertInfos"]["CertInfo"]])

# %% [markdown]
# ## 14.2 · A service that cannot be installed
#
# An API Gateway `group_id` that does not exist: the certificate is issued, the install is
# refused by the service, and that service ends `failed` with the error — alone: the other
# services of the same run are applied as usual.

# %%
broken = two + f"""
[[service]]
name = "broken"
domains = ["api.{domain}"]
apigateway = [{{ group_id = "00000000000000000000000000000000", domain = "api.{domain}" }}]
"""
results = {result.name: result for result in apply(broken)}
print({name: result.status for name, result in results.items()})
check("14.2", results["broken"].status)

# %% [markdown]
# ## 14.3 · Renewing every day
#
# `acmelab renew` is safe to run daily: it renews only what is due (ARI first) and reinstalls
# where needed. A systemd timer with a random delay, so that not every machine asks the CA at
# the same minute (the same as cron's `17 3 * * * acmelab renew`, plus jitter):
#
# ```ini
# # /etc/systemd/system/acmelab-renew.service
# [Service]
# Type=oneshot
# ExecStart=/usr/local/bin/acmelab renew
#
# # /etc/systemd/system/acmelab-renew.timer
# [Timer]
# OnCalendar=daily
# RandomizedDelaySec=1h
# Persistent=true
#
# [Install]
# WantedBy=timers.target
# ```
#
# Enable it with `systemctl enable --now acmelab-renew.timer`. With `shortlived` certificates
# (160 hours), run it at least twice a day (`OnCalendar=*-*-* 03,15:00`).

# %%
workdir.cleanup()  # the throw-away state directory (keys included) goes away

# %% [markdown]
# **Previous:** [13 · Solutions](13_revocation_and_account_lifecycle.ipynb) · **Next:** [15 · Solutions](15_go_live_checklist.ipynb) · Back to [14 · Automate many services](../14_automate_many_services.ipynb)
