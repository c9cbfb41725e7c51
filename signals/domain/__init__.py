"""Pure trading logic: no Django, no database, no clock. Data and ``now`` come in as arguments."""
