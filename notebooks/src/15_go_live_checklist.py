# %% [markdown]
# # 15 · Go live: the checklist
#
# **Goal:** leave the lab: a RAM user that may do exactly what the job needs and nothing more,
# then Let's Encrypt staging, then production, with a real Alibaba Cloud account.
#
# **Needs:** the lab (started if needed) for the zone lookup; nothing from earlier notebooks.
#
# **Previous:** [14 · Automate many services](14_automate_many_services.ipynb) · **Next:** [16 · Fault drills](16_fault_drills.ipynb) · Back to [00 · Start here](00_start_here.ipynb)

# %% [markdown]
# ## Leaving the lab: a least-privilege RAM user
#
# With a real Alibaba Cloud account, never use the account's own AccessKey. Create a **RAM
# user** for the job (programmatic access only), and attach a custom policy that allows exactly
# the actions `acmelab` calls, on exactly the resources of your services:
#
# | product | actions | resource |
# |---|---|---|
# | Alibaba Cloud DNS | `alidns:DescribeDomains` (find the zone) | `*` (a listing) |
# | | `alidns:AddDomainRecord`, `alidns:DeleteDomainRecord`, `alidns:DescribeSubDomainRecords` | `acs:alidns:*:*:domain/<zone>` |
# | CDN | `cdn:SetCdnDomainSSLCertificate`, `cdn:DescribeDomainCertificateInfo`, `cdn:DescribeCdnDomainDetail` | `acs:cdn:*:*:domain/<domain>` |
# | API Gateway | `apigateway:SetDomainCertificate`, `apigateway:DescribeDomain`, `apigateway:DescribeApiGroup` | `acs:apigateway:<region>:*:apigroup/<GroupId>` |
# | CAS | `yundun-cert:UploadUserCertificate`, `yundun-cert:DeleteUserCertificate` | `*` |
# | SLB | `slb:DescribeLoadBalancerAttribute`, `slb:DescribeLoadBalancerHTTPSListenerAttribute`, `slb:SetLoadBalancerHTTPSListenerAttribute` | `acs:slb:<region>:*:loadbalancer/<LoadBalancerId>` |
# | | `slb:UploadServerCertificate`, `slb:DeleteServerCertificate` | `acs:slb:<region>:*:certificate/*` |
#
# The policy can be written from the services themselves, with the actions the command's
# installers declare (`acmelab.deploy.ram_statements`), so it grows and shrinks with them
# (check each action's *RAM authorization* section in Alibaba's API reference when you adapt
# it; the system policies `AliyunDNSFullAccess`, `AliyunCDNFullAccess`, … work too, but allow
# far more). The services of notebook 14, shortened:

# %%
import tomllib

from acmelab import course, display
from acmelab.config import parse_services

domain = course.target().domain
alidns = course.dns_provider()
wanted = parse_services(tomllib.loads(course.services_toml(only=("www", "api"))),
                        source="services.toml")   # notebook 14's file, its first two services
print("services:", ", ".join(s.name for s in wanted))

# %%
zones = {alidns.find_zone(f"_acme-challenge.{name}")[0].puny_code for s in wanted for name in s.domains}
print("zones:", ", ".join(sorted(zones)))

# %% [markdown]
# `course.ram_policy` writes the policy from the services and zones (read its source with
# `course.ram_policy??`):

# %%
display.json_view(course.ram_policy(wanted, zones), title="RAM policy for services.toml")

# %% [markdown]
# ## Checklist: staging, then production
#
# **Before the first run**
#
# 1. The domain's DNS is hosted in Alibaba Cloud DNS (the registrar points its NS records at
#    Alibaba's name servers) — or `_acme-challenge.<name>` is a CNAME into a zone that is.
# 2. CDN: each domain is an accelerated domain of the account. API Gateway: each custom domain is
#    bound to its group (`SetDomain`) and its DNS is a CNAME to the group's subdomain; note the
#    `GroupId` and the region. In mainland-China regions, both need an **ICP filing** for the
#    domain first.
# 3. If the domain has **CAA** records, one of them allows `letsencrypt.org`: the **closest**
#    record set counts (the name's own, else its parent's, …), `issuewild` for wildcards, a
#    set with only `iodef` restricts nothing; RFC 8657's `accounturi=` and
#    `validationmethods=dns-01` can tie issuance to your account and method (notebook 07).
# 4. A RAM user with the policy above; its AccessKey in `ALIBABA_CLOUD_ACCESS_KEY_ID` /
#    `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (a secrets manager or the job's environment — never in a
#    file in git, a notebook, or a command line).

# %% [markdown]
# **Staging** (Let's Encrypt's test CA: real validation, untrusted certificates, generous limits)
#
# 5. `ACMELAB_ACME=staging`, `ACMELAB_DOMAIN=<your domain>`, `ACMELAB_CONTACT=<e-mail>`,
#    `ACMELAB_API_GROUP_ID=<GroupId>`; run notebooks 05–10, or
#    `acmelab apply services.toml --directory staging`.
# 6. Expect the TLS check to fail against the system trust store: staging chains lead to the
#    staging roots ("(STAGING) Pretend Pear X1", "(STAGING) Bogus Broccoli X2" and the Gen Y
#    "(STAGING) Yonder Yam Root YR", "(STAGING) Yearning Yucca Root YE"). The notebooks trust
#    them by themselves (`course.trust_roots()`, shipped in `acmelab/data/`); for the command,
#    pass that file with `--trust-root` to prove the installs.

# %% [markdown]
# **Production**
#
# 7. Only after staging works end to end: `ACMELAB_ACME=production` with
#    `ACMELAB_PRODUCTION=yes`, or `acmelab apply services.toml --directory production --i-mean-production`.
#    Production has real rate limits (Let's Encrypt, as of mid-2026): 50 new certificates per
#    registered domain per 7 days; 5 certificates per 7 days for the exact same set of names;
#    5 failed authorizations per name and account per hour; 300 new orders per account per
#    3 hours; a limit answers `429 rateLimited` with `Retry-After`. Do not loop on failures, and
#    keep the state directory so that nothing is issued twice. At Let's Encrypt a renewal
#    ordered inside the suggested window (naming the old certificate with `replaces`, notebook
#    12) is exempt from the rate limits; one outside it counts like any other order.
# 8. Run `acmelab renew` (or `apply`) daily from a timer; alert on a non-zero exit status. Back up
#    the state directory (it holds the account key, mode 0600). If a **certificate key**
#    leaked: revoke with reason `keyCompromise` and reissue with a new key. If the **account
#    key** leaked: deactivate the account and create a new one (rollover is no remedy — the
#    thief can roll over too), and revoke every certificate you did not order (notebook 13).

# %% [markdown]
# ## Summary
#
# * Outside the lab: a RAM user with a policy built from the services, staging first, production
#   with an explicit opt-in.
# * Keep the state directory, renew daily from a timer, alert on failure; a leaked key has its
#   own remedy (revoke, or deactivate the account).
#
# ## Exercises
#
# 1. Which action must the RAM policy allow for `cas = true`? `check("15.1", action)`.
# 2. Add an SLB or a third CDN domain to `wanted` and print the policy again: which statement
#    grew? `assert` that every CDN domain of `wanted` is in the CDN statement's `Resource`.

# %%
from acmelab.exercises import check

check("15.1", ...)  # a RAM action

# %% [markdown]
# **Previous:** [14 · Automate many services](14_automate_many_services.ipynb) · **Next:** [16 · Fault drills](16_fault_drills.ipynb) · Back to [00 · Start here](00_start_here.ipynb)
