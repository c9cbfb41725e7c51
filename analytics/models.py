"""Analytics is read-only: it owns no tables."""
