"""When to renew a certificate: one policy, decided in one place.

:meth:`RenewalPolicy.decide` answers, for a stored certificate, *is it due,
and why (or why not)?* as a :class:`Decision`.  The rules, first match wins:

1. ``force``; no certificate yet; issued by another ACME server; its chain
   does not lead to a trusted root (a restarted lab); names, key type or
   profile changed; revoked -- each due at once;
2. **ARI** (RFC 9773), when the CA has it and its last answer was usable:
   due once ``now`` reaches a moment chosen at random inside the suggested
   window (§4.2: spreads renewals out), or the window's end;
3. otherwise the **lifetime rule** (Let's Encrypt's integration guide): due
   with a third of the lifetime left, or half of it for lifetimes under
   10 days (``shortlived``).  An explicit ``--threshold`` (a fraction or
   days) replaces that rule and also applies next to ARI: "renew at least
   this early" (``threshold_always``).

A renewal of a certificate this CA issued sends ``replaces`` (its certID) in
newOrder, which links the two and, at Let's Encrypt, exempts a renewal
inside the window from rate limits.

The ARI answer is kept with the certificate (:class:`AriState`, in
``meta.json``), so the CA is asked no more often than its ``Retry-After``
says; :func:`refresh_ari` asks when that time has come.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from acmelab.errors import AcmelabError, ConfigError, InputError
from acmelab.renewal_info import RenewalInfo, cert_id

__all__ = ["AriState", "Decision", "RenewalPolicy", "RenewalThreshold", "refresh_ari", "utc_text"]

logger = logging.getLogger(__name__)

#: seconds: after a failed or malformed ARI answer, ask again after this long
ARI_FAILURE_RETRY = 3600.0
#: lifetimes shorter than this renew at half-life instead of a third left
SHORT_LIFETIME = dt.timedelta(days=10)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.timezone.utc)


def _days(delta: dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f} days" if abs(days) >= 1 else f"{delta.total_seconds() / 3600:.1f} hours"


def utc_text(moment: dt.datetime) -> str:
    """``moment`` as the reasons print it: UTC, to the second, ``Z`` (``"2027-01-09T00:00:00Z"``)."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------
# The lifetime rule
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class RenewalThreshold:
    """The lifetime rule: renew when the remaining lifetime is under a
    fraction of the whole lifetime or under a number of days.

    The default (both None) is Let's Encrypt's advice: a third left, half
    for lifetimes under 10 days.

    Attributes:
        fraction: 0 < fraction < 1, or None.
        days: days (float > 0), or None; at most one of the two is set.
    """

    fraction: float | None = None
    days: float | None = None

    @classmethod
    def parse(cls, text: str) -> "RenewalThreshold":
        """``"0.33"`` (a fraction, below 1), ``"30"`` / ``"30d"`` (days).
        Raises ConfigError."""
        raw = text.strip().lower()
        try:
            if raw.endswith("d"):
                value = float(raw[:-1])
                is_days = True
            else:
                value = float(raw)
                is_days = value >= 1
        except ValueError:
            raise ConfigError(f"--threshold {text!r}: expected a fraction like 0.33 or days like 30d") from None
        if value <= 0:
            raise ConfigError(f"--threshold {text!r} must be positive")
        return cls(None, value) if is_days else cls(value, None)

    def renew_after(self, not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
        """The moment this rule makes a certificate with that validity due."""
        if self.days is not None:
            return not_after - dt.timedelta(days=self.days)
        lifetime = not_after - not_before
        fraction = self.fraction if self.fraction is not None else (0.5 if lifetime < SHORT_LIFETIME else 1 / 3)
        return not_after - lifetime * fraction

    def is_due(self, certificate: Any, now: dt.datetime | None = None) -> bool:
        """True if ``certificate`` (``not_before``/``not_after``) is due at ``now``."""
        return _now(now) >= self.renew_after(certificate.not_before, certificate.not_after)

    def __str__(self) -> str:
        if self.days is not None:
            return f"{self.days:g} days"
        if self.fraction is not None:
            return f"{self.fraction:.3g} of the lifetime"
        return "a third of the lifetime (half under 10 days)"


# --------------------------------------------------------------------------
# ARI, as kept with the certificate
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class AriState:
    """The last ARI answer for one certificate, as stored in ``meta.json``.

    Attributes:
        info: the usable answer (window, Retry-After), or None.
        renew_at: the random moment inside ``info``'s window this client
            chose (kept while the window stays the same).
        error: why the last answer was unusable (malformed, 404, network), or None.
        next_check: when to ask the CA again (aware UTC).
    """

    info: RenewalInfo | None
    renew_at: dt.datetime | None
    error: str | None
    next_check: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict() if self.info else None,
                "renew_at": self.renew_at.isoformat() if self.renew_at else None,
                "error": self.error, "next_check": self.next_check.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "AriState | None":
        """None for an absent or unreadable record (it is then asked anew)."""
        if not isinstance(data, Mapping):
            return None
        try:
            info = RenewalInfo.from_dict(data["info"]) if data.get("info") else None
            renew_at = dt.datetime.fromisoformat(data["renew_at"].replace("Z", "+00:00")) \
                if data.get("renew_at") else None
            next_check = dt.datetime.fromisoformat(str(data["next_check"]).replace("Z", "+00:00"))
        except (AcmelabError, KeyError, TypeError, ValueError, AttributeError):
            return None
        return cls(info, renew_at, data.get("error"), next_check)


def _random_moment(info: RenewalInfo, rng: random.Random) -> dt.datetime:
    """RFC 9773 §4.2: a uniformly random moment in [start, end)."""
    return info.start + (info.end - info.start) * rng.random()


def refresh_ari(certificate_pem: str, previous: AriState | None,
                fetch: Callable[[str], RenewalInfo], *, now: dt.datetime | None = None,
                rng: random.Random | None = None) -> AriState:
    """Ask the CA for the renewal window if the last answer says it is time
    (``previous.next_check``, from the CA's ``Retry-After``), else keep it.

    Args:
        certificate_pem: the certificate (leaf first).
        previous: the stored state, or None.
        fetch: :meth:`acmelab.client.AcmeClient.renewal_info`.
        now: the real time (not a ``--now`` pretend time: it is about how
            often the CA is asked).

    Returns:
        the new (or unchanged) :class:`AriState`.  A failed or malformed
        answer is an ``error`` with a retry in :data:`ARI_FAILURE_RETRY`,
        never an exception: the lifetime rule then decides (logged as a
        warning).
    """
    now = _now(now)
    if previous is not None and now < previous.next_check:
        return previous
    rng = rng or random.SystemRandom()
    try:
        info = fetch(certificate_pem)
    except AcmelabError as error:
        logger.warning("renewalInfo (ARI) unusable, deciding by the certificate's lifetime instead: %s", error)
        return AriState(None, None, str(error), now + dt.timedelta(seconds=ARI_FAILURE_RETRY))
    renew_at = previous.renew_at if (previous and previous.info and previous.renew_at
                                     and (previous.info.start, previous.info.end) == (info.start, info.end)) \
        else _random_moment(info, rng)
    return AriState(info, renew_at, None, info.next_check)


# --------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """What :meth:`RenewalPolicy.decide` concluded.

    Attributes:
        due: issue a new certificate now.
        reason: why, or why not -- always set, for the user
            (``"not due: 61.0 days left, renewal window opens 2027-…"``).
        replaces: the certID to send in newOrder (RFC 9773 §5), or None.
        window: the ARI window ``(start, end)`` that decided, or None.
        next_check: when the CA's ARI should be asked again, or None.
        renew_at: when the certificate becomes due (ARI's chosen moment or
            the lifetime rule's), or None when it is due now for another reason.
    """

    due: bool
    reason: str
    replaces: str | None = None
    window: tuple[dt.datetime, dt.datetime] | None = None
    next_check: dt.datetime | None = None
    renew_at: dt.datetime | None = None


def _replaces(certificate: Any) -> str | None:
    try:
        return cert_id(certificate.leaf())
    except (InputError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class RenewalPolicy:
    """The renewal rules of the module docstring.

    Attributes:
        threshold: the lifetime rule used without ARI (default: Let's
            Encrypt's advice).
        use_ari: follow the CA's renewalInfo when it has one.
        threshold_always: apply ``threshold`` even when ARI says not yet (a
            user's explicit ``--threshold``: renew at least this early).
    """

    threshold: RenewalThreshold = field(default_factory=RenewalThreshold)
    use_ari: bool = True
    threshold_always: bool = False

    def changed(self, certificate: Any, *, names: Sequence[str] | None = None, key_type: str | None = None,
                profile: str | None = None, directory_url: str | None = None, chain_trusted: bool = True,
                force: bool = False) -> Decision | None:
        """Rule 1 of the module docstring alone (no clock, no ARI): the
        Decision if ``certificate`` must be replaced whatever its dates say,
        else None.  Arguments as :meth:`decide`."""
        if certificate is None:
            return Decision(True, "no certificate yet")
        same_ca = not certificate.directory_url or directory_url is None \
            or certificate.directory_url == directory_url
        replaces = _replaces(certificate) if same_ca and chain_trusted else None
        if force:
            return Decision(True, "forced", replaces)
        if not same_ca:
            return Decision(True, f"issued by another ACME server ({certificate.directory_url})")
        if not chain_trusted:
            return Decision(True, "issued by a CA that no longer trusts it (an earlier lab?): "
                                  "its chain does not lead to a trust root")
        if names is not None and tuple(certificate.names) != tuple(names):
            return Decision(True, f"names changed ({', '.join(certificate.names)} -> {', '.join(names)})",
                            replaces if set(certificate.names) & set(names) else None)
        if key_type is not None and certificate.key_type != key_type:
            return Decision(True, f"key type changed ({certificate.key_type} -> {key_type})", replaces)
        stored_profile = getattr(certificate, "profile", None)
        if profile is not None and stored_profile is not None and stored_profile != profile:
            return Decision(True, f"profile changed ({stored_profile} -> {profile})", replaces)
        if certificate.revoked:
            return Decision(True, "revoked", replaces)
        return None

    def decide(self, certificate: Any, now: dt.datetime | None = None, *,
               names: Sequence[str] | None = None, key_type: str | None = None, profile: str | None = None,
               directory_url: str | None = None, chain_trusted: bool = True, force: bool = False,
               ari: AriState | None = None) -> Decision:
        """Is ``certificate`` (a :class:`acmelab.state.ManagedCertificate`, or
        None) due at ``now``?

        Args:
            names, key_type, profile: what the service wants now (None: no
                opinion); a difference makes it due.
            directory_url: the ACME server in use; a certificate from another is due.
            chain_trusted: False if its chain no longer leads to a trusted
                root (a restarted lab): due.
            force: due whatever else holds (``--force``).
            ari: the stored ARI state (:func:`refresh_ari`), or None.

        Returns:
            a :class:`Decision` (never raises).
        """
        now = _now(now)
        changed = self.changed(certificate, names=names, key_type=key_type, profile=profile,
                               directory_url=directory_url, chain_trusted=chain_trusted, force=force)
        if changed is not None:
            return changed
        replaces = _replaces(certificate)
        remaining = certificate.not_after - now
        left = f"{_days(remaining)} left" if remaining >= dt.timedelta(0) else f"expired {_days(-remaining)} ago"
        if self.use_ari and ari is not None and ari.info is not None and ari.renew_at is not None:
            window = (ari.info.start, ari.info.end)
            moment = min(ari.renew_at, ari.info.end)
            why = f"renewal window {utc_text(window[0])} .. {utc_text(window[1])} (ARI)"
            if now >= moment:
                where = "inside" if now <= window[1] else "past the end of"
                return Decision(True, f"due: {left}, {where} the CA's {why}", replaces, window, ari.next_check)
            own = self.threshold.renew_after(certificate.not_before, certificate.not_after)
            if self.threshold_always and now >= own:
                return Decision(True, f"due: {left}, under the threshold {self.threshold} (before the CA's {why})",
                                replaces, window, ari.next_check)
            state = (f"is open: {utc_text(window[0])} .. {utc_text(window[1])} (ARI)" if now >= window[0]
                     else f"opens {utc_text(window[0])}, until {utc_text(window[1])} (ARI)")
            return Decision(False, f"not due: {left}, the CA's renewal window {state}, renewing at {utc_text(moment)}",
                            None, window, ari.next_check, moment)
        moment = self.threshold.renew_after(certificate.not_before, certificate.not_after)
        fallback = f"renew with {self.threshold} left"
        if ari is not None and ari.error:
            fallback += f" (ARI unusable: {ari.error})"
        elif ari is None or not self.use_ari:
            fallback += " (no ARI)"
        if now >= moment:
            return Decision(True, f"due: {left}; {fallback}", replaces,
                            next_check=ari.next_check if ari else None)
        return Decision(False, f"not due: {left}, renewal window opens {utc_text(moment)}; {fallback}",
                        next_check=ari.next_check if ari else None, renew_at=moment)
