"""The ACME requests of :class:`acmelab.client.AcmeClient`, one small module
per resource or extension (lego's ``acme/api`` in spirit):

* :mod:`.base` -- what every request shares: the directory (RFC 8555
  §7.1.1), requests signed with ``kid`` (§6.2), polling (§7.5.1, §7.4),
  concurrency;
* :mod:`.account` -- accounts (§7.3);
* :mod:`.order` -- orders and finalize (§7.4);
* :mod:`.authorization` -- authorizations and challenges (§7.5, §8);
* :mod:`.certificate` -- download (§7.4.2) and revocation (§7.6);
* :mod:`.renewal_info` -- ARI (RFC 9773).

Import the client from :mod:`acmelab.client`.
"""
