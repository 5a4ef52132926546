"""What the lab account owns when the endpoint starts: CDN domains, API groups, load balancers.

The seeds below, or ``<state-dir>/deploy.json`` with any of the keys
``"CdnDomains": ["cdn.example.com", ...]``,
``"ApiGroups": [{"GroupId", "GroupName", "Domains": [...]}, ...]`` and
``"LoadBalancers": [{"LoadBalancerId", "LoadBalancerName", "ListenerPorts": [443]}, ...]``
(a key that is absent keeps its seed).  Tests add more with the real
actions (``AddCdnDomain``, ``CreateApiGroup``, ``SetDomain``).
"""

from __future__ import annotations

import json
from typing import Any

from acmelab.lab.aliyun.server import LabState

CONFIG_FILE = "deploy.json"

#: CDN accelerated domains of the lab account.
CDN_DOMAINS = ["cdn.example.com", "static.example.com", "cdn.dev.example.com", "cdn.example.org"]

#: API Gateway groups of the lab account, with their bound custom domains.
API_GROUPS = [
    {"GroupId": "523e8dc7bbe04613b5b1d726c2a7889d", "GroupName": "acmelab_shop",
     "Domains": ["api.example.com", "api.dev.example.com"]},
]

#: Classic Load Balancer instances of the lab account, each with an HTTPS listener on 443.
LOAD_BALANCERS = [
    {"LoadBalancerId": "lb-bp1acmelabshop0000001", "LoadBalancerName": "acmelab-shop", "ListenerPorts": [443]},
    {"LoadBalancerId": "lb-bp1acmelabapi00000002", "LoadBalancerName": "acmelab-api", "ListenerPorts": [443, 8443]},
]

DEFAULTS: dict[str, Any] = {"CdnDomains": CDN_DOMAINS, "ApiGroups": API_GROUPS, "LoadBalancers": LOAD_BALANCERS}


def seeded(state: LabState, key: str) -> Any:
    """The seed ``key`` (``"CdnDomains"``, ``"ApiGroups"``, ``"LoadBalancers"``):
    from ``deploy.json`` in the state directory if it has it, else :data:`DEFAULTS`."""
    if state.state_dir is not None and (state.state_dir / CONFIG_FILE).is_file():
        config = json.loads((state.state_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        if key in config:
            return config[key]
    return DEFAULTS[key]
