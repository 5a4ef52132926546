"""The names ``acmelab.services`` had before the split, for notebooks and callers.

The services file now lives in :mod:`acmelab.config`, the engine in
:mod:`acmelab.engine`, the DNS journal in :mod:`acmelab.journal`, where it
runs in :mod:`acmelab.backends`, and the renewal rules in
:mod:`acmelab.renewal`.  New code imports from those.
"""

from acmelab.backends import Environment
from acmelab.certificates import chain_leads_to
from acmelab.config import DNS_PROVIDERS, PRODUCTS, InstallTarget, Service, load_services, parse_services, \
    services_from_state
from acmelab.engine import DEFAULT_CONCURRENCY, SKIPPED_LOCKED, ServiceResult, apply_services, process_service, \
    refresh_renewal_info
from acmelab.journal import remove_standing_records, standing_records
from acmelab.renewal import RenewalThreshold

__all__ = [
    "DNS_PROVIDERS", "PRODUCTS", "DEFAULT_CONCURRENCY", "SKIPPED_LOCKED", "InstallTarget", "Service",
    "RenewalThreshold", "Environment", "ServiceResult", "chain_leads_to", "load_services", "parse_services",
    "process_service", "apply_services", "services_from_state", "refresh_renewal_info", "standing_records",
    "remove_standing_records",
]
