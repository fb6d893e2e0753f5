"""Token buckets in PostgreSQL, shared by all server processes (one statement per take).

The table is UNLOGGED (``access`` 0003): a take's commit does not wait for the WAL, and a
database crash only refills the buckets."""

from __future__ import annotations

from dataclasses import dataclass

from platform_site.sql import fetch

_TAKE = """
INSERT INTO rate_buckets AS b (key, tokens, updated_at)
VALUES (%(key)s, %(capacity)s - 1, clock_timestamp())
ON CONFLICT (key) DO UPDATE SET
    tokens = LEAST(%(capacity)s, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at) * %(rate)s) - 1,
    updated_at = clock_timestamp()
WHERE LEAST(%(capacity)s, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at) * %(rate)s) >= 1
RETURNING tokens
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


def rate_limit_take(*, key: str, limit: RateLimit) -> float | None:
    """Take one token from bucket ``key``; None when allowed, else seconds until a token is back."""
    params = {"key": key[:200], "capacity": limit.capacity, "rate": limit.per_minute / 60.0}
    if fetch(_TAKE, params):  # on every chat request: a prepared statement
        return None
    row = next(iter(fetch(_LEVEL, {"key": params["key"]}, prepare=False)), None)
    tokens, elapsed = (row[0], float(row[1])) if row else (0.0, 0.0)
    current = min(limit.capacity, tokens + elapsed * params["rate"])
    return max((1 - current) / params["rate"], 0.01)
