"""Stuck-signal recovery (task analytics.recover_stuck_signals): being built."""
