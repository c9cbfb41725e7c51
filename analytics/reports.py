"""Reports of a book over a period (task analytics.daily_report): being built."""
