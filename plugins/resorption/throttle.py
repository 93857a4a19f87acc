"""Sign-in throttling: slow down guessing without locking anyone out for someone else's failures.

What it must hold against, and what it must never do:
- **Guessing one account's password from one address** (`pair`: username × address). A few
  failures are free (typing mistakes); then each further failure doubles the wait before the
  next attempt, up to an hour: about thirty guesses a day per account and address.
- **Guessing one account from many addresses** (`account`: the username, all addresses). A
  higher allowance, then the same doubling. It would let anybody lock an account's owner out
  by failing from enough addresses, so it does not apply from an address the account signed
  in from in the last 30 days (`known`): the owner keeps signing in from the office or from
  home while a botnet waits; an attacker at such an address is still bound by the pair counter.
- **Trying many accounts from one address** (`address`: failures of every username from the
  address). It governs only the usernames that already failed `ADDRESS_AFTER` times from that
  address (and did not sign in from it lately): the third round of a password spray waits,
  while another person behind the same NAT, proxy or office, who never failed there (or made
  one typing mistake), signs in at once. A first attempt on a username is never held back by
  other usernames' failures: that would block a colleague's valid credentials because of an
  attacker on the same network. (So each such attempt costs one argon2 check: a deployment
  caps the request rate per address at its proxy.)
- **No oracle.** Counters are keyed by the username as typed, lower-cased, whether an account
  has it or not; an unknown or deactivated username takes the same path, the same argon2 check
  (against a dummy hash) and the same counters as a wrong password of a real account, so its
  answers (401, 429, Retry-After) are those of a known one.
- **A success clears nothing.** Failures before and after a success count alike, so that one
  valid account does not reset the count of guesses made around it. A success only notes the
  address as known for its account.
- **No burst.** An attempt in backoff territory (the next failure would start a wait) takes
  its counters for `HOLD` seconds while its password is checked: parallel attempts get 429
  instead of being checked all at once the moment a wait ends.
- **Bad tokens.** An API token is 256 random bits and a JWT is signed: nobody guesses them. Bad
  tokens, JWTs and malformed headers are counted per address (`token`) so that a scanner or a
  misconfigured client gets 429 and `Retry-After`; valid tokens are always looked up first and
  pass, and this counter never touches password sign-ins.
- **Addresses.** An IPv4 address counts alone; an IPv6 address counts as its /64 (one network
  gets one, and hands its hosts billions of addresses). The address is the one the app sees:
  behind a proxy, `RESORPTION_PROXY_COUNT` must be set so that it is the client's.

Whoever is held back gets `TooManyAttempts` (429, `Retry-After` in seconds, a French message)
before any credential is looked at. Counters are forgotten a day after their last failure.
Everything is kept in PostgreSQL (sql/055_sign_in_throttle.sql), reached through SECURITY
DEFINER functions only; the rules below travel with each call.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from dataclasses import asdict, dataclass

# Longer usernames exist in no account; the key keeps this much of what was typed.
USERNAME_KEY_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Rule:
    """Failures allowed without waiting, then the first wait and the longest one, in seconds."""

    free: int
    base: int
    cap: int

    def delay(self, failures: int) -> int:
        """The wait after the `failures`-th failure (sql/055_sign_in_throttle.sql, sign_in_delay)."""
        if failures <= self.free:
            return 0
        return min(self.cap, self.base * 2 ** min(failures - self.free - 1, 30))


PAIR = Rule(free=5, base=30, cap=3600)
ACCOUNT = Rule(free=20, base=30, cap=3600)
ADDRESS = Rule(free=20, base=30, cap=3600)
TOKEN = Rule(free=20, base=30, cap=900)
# Failures of a username from an address before the address's counter governs it too.
ADDRESS_AFTER = 2
# A counter without a failure for this long is forgotten.
FORGET = 24 * 3600
# An account that signed in from an address within this time is at home there.
KNOWN = 30 * 24 * 3600
# How long an attempt in backoff territory holds its counters while it is checked (< any base).
HOLD = 10
# A success from a known address is noted again after this long (not on every request).
NOTE = 3600

RULES_JSON = json.dumps(
    {
        "pair": asdict(PAIR),
        "account": asdict(ACCOUNT),
        "address": asdict(ADDRESS),
        "token": asdict(TOKEN),
        "address_after": ADDRESS_AFTER,
        "forget": FORGET,
        "known": KNOWN,
        "hold": HOLD,
        "note": NOTE,
    }
)
# A success releases a hold, never a backoff: it tells them apart by their length.
assert min(r.base for r in (PAIR, ACCOUNT, ADDRESS)) > HOLD, "a hold must be shorter than any backoff"


def username_key(username: str) -> str:
    """The key of a username's counters: as typed, trimmed and lower-cased (as accounts match it)."""
    return username.strip().lower()[:USERNAME_KEY_LENGTH] or "?"


# (pure: remembered for the addresses seen, each authenticated request asks it of its client's)
@functools.lru_cache(maxsize=4096)
def address_key(client: str) -> str:
    """The key of an address's counters: an IPv4 address, or an IPv6 address's /64 network."""
    try:
        address = ipaddress.ip_address(client.strip().strip("[]"))
    except ValueError:
        return client[:64] or "inconnu"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
