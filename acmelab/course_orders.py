"""The course's order and its certificate (notebooks 06-12): loaded when an
earlier notebook made them, made now otherwise, with a ``course: created``
line saying so (:func:`acmelab.course.announce_created`).

The order is remembered as ``order_url`` in the course's ``state.json``;
the certificate lives in ``certificates/<label>/`` (``fullchain.pem``,
``cert.pem``, the key ``privkey.pem``).  Re-exported by :mod:`acmelab.course`,
whose helpers these call through the module (``course.names()``), so a
test that replaces one of them replaces it here too.
"""

from __future__ import annotations

from pathlib import Path

from acmelab import files
from acmelab.certificates import certificate_names, chain_leads_to, key_matches, serial_hex


def _chain_is_current(chain_pem: str, key) -> bool:
    """Is the saved chain usable now: not expired, matching ``key``, and (in
    the lab) issued by the Pebble that is running now?"""
    import datetime as dt

    from cryptography import x509

    from acmelab import course

    leaf = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))[0]
    if leaf.not_valid_after_utc <= dt.datetime.now(dt.timezone.utc) or not key_matches(key, leaf):
        return False
    roots = course.trust_roots()
    return roots is None or chain_leads_to(chain_pem, roots)


def save_certificate(chain_pem: str, label: str = "course") -> Path:
    """Save a downloaded chain as ``fullchain.pem`` (leaf + intermediates)
    and its leaf as ``cert.pem`` in certificate ``label``'s folder
    (atomically; certificates are public, mode 0644).  Returns the
    full-chain path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from acmelab import course

    leaf = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))[0]
    files.write_atomically(course.leaf_path(label), leaf.public_bytes(serialization.Encoding.PEM))
    return files.write_atomically(course.chain_path(label), chain_pem.encode("ascii"))


def issued_certificate(label: str = "course"):
    """The course's certificate, as notebook 09 saved it -- or issued now.

    Loads ``fullchain.pem`` and the certificate key of ``label`` if they are
    there, match, have not expired and (in the lab) lead to the running
    Pebble's root.  Otherwise issues a certificate for :func:`course.names
    <acmelab.course.names>` in one call (:func:`acmelab.issue.issue_certificate`,
    dns-01 through :func:`course.dns_provider <acmelab.course.dns_provider>`)
    with :func:`course.certificate_key <acmelab.course.certificate_key>` --
    the saved key is reused, never replaced -- and saves the chain.

    Returns:
        :class:`acmelab.issue.IssuedCertificate` (``order_url`` is ``""``
        when loaded from the files).

    Raises:
        AcmelabError subclasses from issuing (ChallengeFailed, DnsError, ...).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from acmelab import course
    from acmelab.issue import IssuedCertificate, issue_certificate

    key = course.certificate_key(label)
    path = course.chain_path(label)
    chain_pem = path.read_text(encoding="ascii") if path.exists() else ""
    if not chain_pem or not _chain_is_current(chain_pem, key):
        issued = issue_certificate(course.names(), client=course.account_client(), dns=course.dns_provider(),
                                   certificate_key=key)
        save_certificate(issued.chain_pem, label)
        course.remember(**{f"{label}_order_url": issued.order_url})
        course.announce_created(f"a certificate for {', '.join(issued.names)}, issued now and saved in "
                                f"{course.relative(path)} (notebook 09 issues it; none current was there)")
        return issued
    leaf = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))[0]
    return IssuedCertificate(
        certificate_pem=leaf.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        chain_pem=chain_pem, private_key=key, order_url=str(course.recall(f"{label}_order_url", "")),
        names=tuple(certificate_names(leaf)), serial_hex=serial_hex(leaf.serial_number),
        not_after=leaf.not_valid_after_utc)


def _profile(client):
    """The profile the course orders (``classic`` when the CA offers
    profiles, :func:`acmelab.issue.choose_profile`): Pebble would pick a
    random one for an order that names none, and the lifetime with it."""
    from acmelab.issue import choose_profile

    return choose_profile(client, None)


def pending_order(client):
    """The course's order from notebook 06 (``order_url``) if it is still
    ``pending`` with every authorization ``pending``; otherwise -- the lab
    was restarted, or notebook 07 already answered it -- a new order for
    :func:`course.names <acmelab.course.names>` (remembered as ``order_url``).

    Args:
        client: an AcmeClient with the course's account
            (:func:`course.account_client <acmelab.course.account_client>`).

    Returns:
        :class:`acmelab.client.Order`: ``pending``; a new one is made after
        giving up the account's valid authorizations for the names
        (``deactivate_valid_authorizations``), so none is reused.

    Raises:
        AcmeProblem, ProtocolError, NetworkError: from newOrder.
    """
    from acmelab import course
    from acmelab.errors import AcmeProblem, ProtocolError

    url = course.recall("order_url")
    if url:
        try:
            order = client.fetch_order(url)
            if order.status == "pending" and all(
                    client.fetch_authorization(a).status == "pending" for a in order.authorizations):
                return order
        except (AcmeProblem, ProtocolError):
            pass  # an order of an earlier lab (Pebble forgets everything when it stops: 404)
    # no valid authorization to reuse: the order shows the whole flow (notebook 06 says why)
    client.deactivate_valid_authorizations(course.names())
    order = client.new_order(course.names(), profile=_profile(client))
    course.remember(order_url=order.url)
    course.announce_created(f"a new order for {', '.join(course.names())} "
                            "(notebook 06 makes it; none pending was there)")
    return order


def ready_order(client, dns=None):
    """The course's order, ``ready`` to be finalized: the saved ``order_url``
    if notebook 07 made it ready; otherwise a new order for
    :func:`course.names <acmelab.course.names>` whose dns-01 challenges are
    answered now by :func:`acmelab.issue.authorize_order` -- the same steps
    as :func:`acmelab.issue.issue_certificate` (RFC 8555 §8.4: TXT records
    published through ``dns``, default :func:`course.dns_provider
    <acmelab.course.dns_provider>`, checked, answered, and removed again on
    every path).  Remembered as ``order_url``.

    Raises:
        ChallengeFailed, DnsError, AcmeProblem, PollTimeout.
    """
    from acmelab import course
    from acmelab.errors import AcmeProblem, ProtocolError
    from acmelab.issue import authorize_order

    url = course.recall("order_url")
    if url:
        try:
            order = client.fetch_order(url)
            if order.status == "ready":
                return order
        except (AcmeProblem, ProtocolError):
            pass  # an order of an earlier lab (404)
    dns = dns if dns is not None else course.dns_provider()
    order = client.new_order(course.names(), profile=_profile(client))
    course.remember(order_url=order.url)
    ready = authorize_order(client, order, dns)
    course.announce_created(f"a new order for {', '.join(course.names())}, its dns-01 challenges answered: "
                            f"{ready.status} (notebook 07 makes it ready; none ready was there)")
    return ready
