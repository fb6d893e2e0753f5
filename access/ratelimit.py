"""Token buckets in PostgreSQL, shared by all server processes (one statement per take).

The table is UNLOGGED (``access`` 0003): a take's commit does not wait for the WAL, and a
database crash only refills the buckets. A chat request's key check and take are one statement
(``api_key_admit``)."""

from __future__ import annotations

from dataclasses import dataclass

from access.selectors import (
    KEY_SQL,
    Principal,
    bearer_required,
    principal_from_header,
    principal_of,
)
from access.services import api_key_digest
from platform_site.errors import RateLimited
from platform_site.sql import fetch

# A bucket refilled since its last take (``b``: the stored row), and the take of one token from it.
_LEVEL_NOW = ("LEAST(%(capacity)s, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at)"
              " * %(rate)s)")
_TAKE_ON_CONFLICT = f"""ON CONFLICT (key) DO UPDATE SET tokens = {_LEVEL_NOW} - 1, updated_at = clock_timestamp()
    WHERE {_LEVEL_NOW} >= 1
    RETURNING tokens"""
_TAKE = f"""
INSERT INTO rate_buckets AS b (key, tokens, updated_at)
VALUES (%(key)s, %(capacity)s - 1, clock_timestamp())
{_TAKE_ON_CONFLICT}
"""
# The caller's key and a token from its bucket in one statement: nothing is taken unless the key is valid.
_KEY_TAKE = f"""
WITH k AS ({KEY_SQL}),
taken AS (
    INSERT INTO rate_buckets AS b (key, tokens, updated_at)
    SELECT 'api_key:' || k.id, %(capacity)s - 1, clock_timestamp() FROM k
    {_TAKE_ON_CONFLICT}
)
SELECT id, name, scopes, last_used_at, EXISTS (SELECT 1 FROM taken) FROM k
"""
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0}
_LEVEL = "SELECT tokens, EXTRACT(EPOCH FROM clock_timestamp() - updated_at) FROM rate_buckets WHERE key = %(key)s"


@dataclass(frozen=True)
class RateLimit:
    """``capacity`` tokens (the burst), refilled at ``per_minute`` tokens a minute."""

    per_minute: float
    capacity: float

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """``"60/min"``, ``"5/s"``, ``"1000/hour"``, optionally ``",burst=10"``; empty or ``0``: no limit."""
        text = (text or "").strip()
        if text in ("", "0"):
            return None
        rate_part, _, burst_part = text.partition(",")
        amount, _, unit = rate_part.partition("/")
        per = _UNITS.get(unit.strip().lower() or "min")
        if per is None:
            raise ValueError(f"invalid rate limit {text!r}: the unit is s, min or hour")
        rate = float(amount) * 60.0 / per
        burst = float(burst_part.split("=")[1]) if burst_part else max(float(amount), 1.0)
        if rate <= 0 or burst < 1:
            raise ValueError(f"invalid rate limit {text!r}")
        return cls(per_minute=rate, capacity=burst)

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    def params(self) -> dict[str, float]:
        """The bucket's SQL parameters (``capacity``, ``rate`` per second)."""
        return {"capacity": self.capacity, "rate": self.per_second}


def rate_limit_take(*, key: str, limit: RateLimit) -> float | None:
    """Take one token from bucket ``key``; None when allowed, else seconds until a token is back."""
    params = {"key": key[:200], **limit.params()}
    if fetch(_TAKE, params):
        return None
    return _wait_s(params["key"], limit)


def _wait_s(key: str, limit: RateLimit) -> float:
    """Seconds until bucket ``key`` holds a token again."""
    row = next(iter(fetch(_LEVEL, {"key": key}, prepare=False)), None)
    tokens, elapsed = (row[0], float(row[1])) if row else (0.0, 0.0)
    current = min(limit.capacity, tokens + elapsed * limit.per_second)
    return max((1 - current) / limit.per_second, 0.01)


def api_key_admit(header: str | None, *, limit: RateLimit | None) -> Principal:
    """The caller's API key (401) with a token taken from its bucket ``api_key:<id>`` (429
    ``RateLimited`` with the wait), in one statement on every chat request (prepared)."""
    if limit is None:
        return principal_from_header(header)
    rows = fetch(_KEY_TAKE, {"hash": api_key_digest(bearer_required(header)), **limit.params()})
    principal = principal_of(rows)
    if not rows[0][4]:
        wait_s = _wait_s(f"api_key:{principal.key_id}", limit)
        raise RateLimited(f"Rate limit of this API key reached; retry in {wait_s:.1f}s", retry_after_s=round(wait_s, 1))
    return principal
