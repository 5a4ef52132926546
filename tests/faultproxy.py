"""The fault proxy moved into the lab (:mod:`acmelab.lab.faultproxy`); the
tests keep importing it from here."""

from acmelab.lab.faultproxy import HOP_BY_HOP, Exchange, Fault, FaultProxy, http_date

__all__ = ["HOP_BY_HOP", "Exchange", "Fault", "FaultProxy", "http_date"]
