# %% [markdown]
# # 15 · Solutions: Go live, the checklist
#
# Worked answers to the exercises of [15 · Go live: the checklist](../15_go_live_checklist.ipynb).
# Try each one yourself first; every answer below is computed, then handed to `check` (or
# asserted).
#
# **Previous:** [14 · Solutions](14_automate_many_services.ipynb) · **Next:** [16 · Solutions](16_fault_drills.ipynb)

# %%
import tomllib

from acmelab import course
from acmelab.config import parse_services
from acmelab.exercises import check

domain = course.target().domain
alidns = course.dns_provider()
services_toml = course.services_toml(only=("www", "api"))   # notebook 15's services


def policy_for(toml: str) -> dict:
    wanted = parse_services(tomllib.loads(toml), source="services.toml")
    zones = {alidns.find_zone(f"_acme-challenge.{name}")[0].puny_code for s in wanted for name in s.domains}
    return wanted, course.ram_policy(wanted, zones)

# %% [markdown]
# ## 15.1 · The RAM action behind `cas = true`
#
# A copy in Certificate Management Service is an upload, `UploadUserCertificate` (cas
# 2020-04-07), whose RAM namespace is `yundun-cert`. Read from the policy `course.ram_policy`
# writes for the services file of notebook 15:

# %%
wanted, policy = policy_for(services_toml)
cas_actions = [action for statement in policy["Statement"] for action in statement["Action"]
               if action.startswith("yundun-cert:")]
print(cas_actions)
check("15.1", cas_actions[0])

# %% [markdown]
# ## 15.2 · A third CDN domain
#
# A service for `cdn.dev.<domain>` adds that domain to the `Resource` of the CDN statement —
# the statement grows, no new one appears, and no other product gains anything:

# %%
grown = services_toml + f"""
[[service]]
name = "dev"
domains = ["cdn.dev.{domain}"]
cdn = "cdn.dev.{domain}"
"""
wanted, policy = policy_for(grown)
cdn_statement = next(s for s in policy["Statement"] if "cdn:SetCdnDomainSSLCertificate" in s["Action"])
cdn_domains = {t.domain for s in wanted for t in s.install if t.product == "cdn"}
assert all(f"acs:cdn:*:*:domain/{name}" in cdn_statement["Resource"] for name in cdn_domains)
print(len(policy["Statement"]), "statements; CDN resources:", cdn_statement["Resource"])

# %% [markdown]
# **Previous:** [14 · Solutions](14_automate_many_services.ipynb) · **Next:** [16 · Solutions](16_fault_drills.ipynb) · [15 · Go live: the checklist](../15_go_live_checklist.ipynb)
