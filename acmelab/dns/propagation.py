"""Is the TXT record visible yet?  Ask the authoritative name servers.

Before the client tells the CA "validate now" (RFC 8555 §7.5.1), the DNS-01
TXT record must be visible to the CA's resolver.  Asking a caching resolver
proves little (it may have cached the *absence* of the record), so we ask the
zone's authoritative name servers directly, with ``dnspython``:

1. find the servers: given explicitly (the lab: ``LabInfo.dns_server``), or
   the zone's NS records resolved to addresses (:func:`authoritative_servers`);
2. query TXT at the name on every server, non-recursively;
3. if the answer is a CNAME (delegated validation: ``_acme-challenge.example.com
   CNAME _acme-challenge.validation.example.net``, RFC 8555 §8.4 allows the
   CA to follow it), query the target instead -- up to :data:`MAX_CNAME_HOPS`
   hops (:func:`cname_chain` is the one CNAME follower of the client side:
   the Alibaba provider writes its record at the chain's end);
4. repeat until every server shows the value, or raise DnsError at the deadline.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from acmelab.csr import ascii_name
from acmelab.errors import DnsError

logger = logging.getLogger(__name__)

Server = tuple[str, int]

#: how many CNAME hops are followed from the validation name (here and by
#: :func:`cname_chain`) before giving up
MAX_CNAME_HOPS = 8


def txt_values(name: str, server: Server, *, timeout: float = 2.0,
               follow_cname: bool = True) -> tuple[set[str], str]:
    """The TXT values one server answers for ``name``.

    Args:
        name: a DNS name, no trailing dot needed.
        server: ``(address, port)`` of a name server (IP address).
        timeout: seconds per UDP query.
        follow_cname: follow CNAMEs (in the answer, or by asking again).

    Returns:
        ``(values, final_name)``: the set of TXT strings (character-strings
        of one record joined, as the CA does) and the name they were found at.

    Raises:
        DnsError: the server did not answer or answered SERVFAIL/REFUSED.
    """
    current = dns.name.from_text(name)
    for _hop in range(MAX_CNAME_HOPS + 1):
        query = dns.message.make_query(current, dns.rdatatype.TXT)
        try:
            response = dns.query.udp_with_fallback(query, server[0], timeout=timeout, port=server[1])[0]
        except (dns.exception.DNSException, OSError) as error:
            raise DnsError(f"DNS server {server[0]}:{server[1]} did not answer TXT {current}: {error}") from error
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsError(f"DNS server {server[0]}:{server[1]} answered {dns.rcode.to_text(rcode)} for TXT {current}")
        values: set[str] = set()
        found_at = current
        target = None
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                found_at = rrset.name          # the CNAME target, if the server followed it
                for record in rrset:
                    values.add(b"".join(record.strings).decode("utf-8", "replace"))
            elif rrset.rdtype == dns.rdatatype.CNAME and rrset.name == current:
                target = rrset[0].target
        if not follow_cname and found_at != current:
            values = set()                     # only records at the name itself count
        if values or not follow_cname or target is None:
            return values, found_at.to_text(omit_final_dot=True)
        logger.debug("%s is a CNAME to %s", current, target)
        current = target
    raise DnsError(f"more than {MAX_CNAME_HOPS} CNAME hops from {name}")


def authoritative_servers(zone: str, *, resolver: dns.resolver.Resolver | None = None) -> list[Server]:
    """The zone's name servers as ``(IP address, 53)``, from its NS records
    (looked up with the system resolver).

    Raises:
        DnsError: no NS records or none of them resolves.
    """
    resolver = resolver or dns.resolver.Resolver()
    try:
        hosts = [record.target.to_text() for record in resolver.resolve(zone, "NS")]
    except dns.exception.DNSException as error:
        raise DnsError(f"cannot find the name servers of {zone}: {error}") from error
    servers: list[Server] = []
    for host in hosts:
        for record_type in ("A", "AAAA"):
            try:
                servers.extend((record.address, 53) for record in resolver.resolve(host, record_type))
            except dns.exception.DNSException:
                continue
    if not servers:
        raise DnsError(f"none of the name servers of {zone} ({', '.join(hosts)}) has an address")
    return servers


def wait_for_txt(name: str, value: str, *, nameservers: Iterable[Server] | None = None,
                 zone: str | None = None, timeout: float = 120.0, interval: float = 2.0,
                 follow_cname: bool = True) -> str:
    """Wait until every server answers TXT ``value`` at ``name``.

    Args:
        name: the validation name, e.g. ``"_acme-challenge.www.example.com"``.
        value: the expected TXT value (base64url SHA-256 of the key
            authorization, RFC 8555 §8.4).
        nameservers: ``[(address, port), ...]`` to ask; ``None`` means the
            authoritative servers of ``zone`` (or of ``name``'s parent names,
            found by NS lookup).
        zone: the zone holding ``name`` (used only when ``nameservers`` is None).
        timeout: seconds before giving up.
        interval: seconds between rounds.
        follow_cname: follow a CNAME at ``name`` (delegated validation);
            False when ``name`` is already the end of its chain
            (:func:`cname_chain`).

    Returns:
        The name the value was found at (``name``, or a CNAME target).

    Raises:
        DnsError: not visible on every server within ``timeout``; the message
            names ``name``, ``value``, the servers and what they answered.
            Without ``nameservers``: also the CNAME lookup's errors
            (:func:`cname_chain`).
    """
    if nameservers is not None:
        servers = list(nameservers)
    else:
        # Real DNS: a delegated _acme-challenge CNAME points into another zone,
        # whose own servers hold the TXT record; ask those.
        chain = cname_chain(name) if follow_cname else (name,)
        if len(chain) > 1:
            logger.debug("%s is delegated by CNAME to %s", name, chain[-1])
            name, zone = chain[-1], None
        servers = authoritative_servers(zone or _parent(name))
    if not servers:
        raise DnsError(f"no name servers to check TXT {name}")
    deadline = time.monotonic() + timeout
    last: dict[Server, str] = {}
    while True:
        found_at = None
        for server in servers:
            try:
                values, where = txt_values(name, server, follow_cname=follow_cname,
                                           timeout=min(2.0, max(0.2, deadline - time.monotonic())))
            except DnsError as error:
                last[server] = str(error)
                break
            if value not in values:
                last[server] = f"TXT at {where}: {sorted(values) or 'none'}"
                break
            found_at = where
        else:
            logger.debug("TXT %s=%s visible on %d server(s)", name, value, len(servers))
            return found_at or name
        if time.monotonic() + interval > deadline:
            seen = "; ".join(f"{host}:{port} -> {answer}" for (host, port), answer in last.items())
            raise DnsError(f"TXT record {name} = {value!r} not visible on "
                           f"{', '.join(f'{h}:{p}' for h, p in servers)} after {timeout:g} s ({seen})")
        time.sleep(interval)


def cname_chain(name: str, nameservers: Iterable[Server] | None = None) -> tuple[str, ...]:
    """The CNAME chain at ``name``: ``(name, target, ..., end)``, just
    ``(name,)`` when ``name`` is no CNAME.  Asked of the ``nameservers``
    given (directly, each hop, the next server when one fails), else of the
    system resolver; names in lower-case A-label form, no trailing dot.

    "No CNAME" is an answer: NOERROR without a CNAME, NXDOMAIN (and, from
    the system resolver, every server refusing: ``NoNameservers``).  No
    answer at all -- a timeout, every given server failing -- is a
    DnsError, never taken for "no CNAME": the record would be written, or
    looked for, at the wrong name.

    Raises:
        DnsError: a loop (a name seen twice), more than
            :data:`MAX_CNAME_HOPS` hops, or no server answered.
        InputError: ``name`` is not a domain name.
    """
    servers = list(nameservers) if nameservers is not None else None
    chain = [ascii_name(name)]
    while True:
        target = _cname_of(chain[-1], servers)
        if target is None:
            return tuple(chain)
        if target in chain:
            raise DnsError(f"CNAME loop at {chain[0]}: {' -> '.join([*chain, target])}")
        chain.append(target)
        if len(chain) > MAX_CNAME_HOPS + 1:
            raise DnsError(f"more than {MAX_CNAME_HOPS} CNAME hops from {chain[0]}: {' -> '.join(chain)}")


def _cname_of(name: str, servers: list[Server] | None) -> str | None:
    """The CNAME target of ``name`` (lower-case, no trailing dot), or None (see :func:`cname_chain`)."""
    qname = dns.name.from_text(name)
    if servers is None:
        try:
            answer = dns.resolver.resolve(qname, "CNAME", raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return None
        except dns.exception.DNSException as error:
            raise DnsError(f"cannot look up the CNAME of {name}: {error}") from error
        return _target(answer.rrset[0]) if answer.rrset is not None else None
    failures = []
    for host, port in servers:
        query = dns.message.make_query(qname, dns.rdatatype.CNAME)
        try:
            response = dns.query.udp_with_fallback(query, host, timeout=2.0, port=port)[0]
        except (dns.exception.DNSException, OSError) as error:
            failures.append(f"{host}:{port}: {error}")
            continue
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            failures.append(f"{host}:{port}: {dns.rcode.to_text(response.rcode())}")
            continue
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME and rrset.name == qname:
                return _target(rrset[0])
        return None
    raise DnsError(f"no name server answered CNAME {name}: {'; '.join(failures) or 'no servers'}")


def _target(record) -> str:
    return record.target.to_text(omit_final_dot=True).lower()


def _parent(name: str) -> str:
    """The nearest enclosing zone with NS records (system resolver)."""
    candidate = dns.name.from_text(name).parent()
    while len(candidate) > 1:
        try:
            dns.resolver.resolve(candidate, "NS")
            return candidate.to_text(omit_final_dot=True)
        except dns.exception.DNSException:
            candidate = candidate.parent()
    raise DnsError(f"cannot find the zone of {name}")
