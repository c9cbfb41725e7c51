"""Shadow trades: every decided signal paper-traded on the same fill model."""

from django.db import models

from signals.models import Signal, SimulatedTrade


class ShadowTrade(SimulatedTrade):
    """What a signal would have done had it been traded.

    Blocked signals are the measurement; approved ones are the control group that
    lets shadow fills be compared with paper fills.
    """

    class Group(models.TextChoices):
        BLOCKED = "blocked", "blocked"
        CONTROL = "control", "control (approved)"

    signal = models.OneToOneField(Signal, on_delete=models.CASCADE, related_name="shadow_trade")
    group = models.CharField(max_length=8, choices=Group.choices)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["book", "status"]),
            # The rollups' partial days: a book's shadow trades by exit time.
            models.Index(fields=["book", "exit_time"], name="shadow_book_exit"),
        ]

    def __str__(self) -> str:
        return f"shadow #{self.pk} {self.group} {self.side} ({self.status})"


class BookRollup(models.Model):
    """One group of a book's rows, summed per UTC day: what the pages read instead of the
    rows (``shadow.rollups``). Kept in the transaction of every write that changes the
    book; ``manage.py rollups_rebuild`` recomputes them from the rows.

    ``fact`` says what is summed and on which day (docs/rollups.md): ``signals`` and
    ``blocked`` by candle day; ``paper``, ``shadow``, ``guard_shadow`` and ``pool`` (closed
    trades with a P&L) by exit day; ``guard_blocked`` (blocking decisions) by candle day.
    Dimensions a fact does not have are empty."""

    class Fact(models.TextChoices):
        SIGNALS = "signals", "signals by candle day"
        BLOCKED = "blocked", "blocked signals by candle day and blocker"
        PAPER = "paper", "closed paper trades by exit day"
        SHADOW = "shadow", "closed shadow trades of blocked signals by exit day"
        GUARD_BLOCKED = "guard_blocked", "blocking decisions by candle day"
        GUARD_SHADOW = "guard_shadow", "closed shadow trades per blocking guard by exit day"
        POOL = "pool", "every closed shadow trade by exit day and blocker"

    class Grain(models.TextChoices):
        DAY = "day", "one UTC day"
        MONTH = "month", "one calendar month (UTC), summed from its days"

    book = models.ForeignKey("signals.Book", on_delete=models.CASCADE, related_name="+")
    fact = models.CharField(max_length=16, choices=Fact.choices)
    grain = models.CharField(max_length=5, choices=Grain.choices, default=Grain.DAY)
    day = models.DateField(help_text="The day, or a month row's first day.")
    strategy_id = models.BigIntegerField(
        null=True, help_text="The signal's strategy version (BookStrategy id)."
    )
    config_id = models.BigIntegerField(help_text="The signal's strategy configuration id.")
    symbol = models.CharField(max_length=32)
    state = models.CharField(max_length=16, blank=True, help_text="The signal's state.")
    guard = models.CharField(
        max_length=100,
        blank=True,
        help_text="The blocking guard's name; on a blocked signal its only blocker, "
        "or '+' when several guards blocked it.",
    )
    guard_config_id = models.BigIntegerField(
        null=True,
        help_text="The blocking guard's configuration version (BookGuard id); on a "
        "blocked signal, that of its only blocker.",
    )
    status = models.CharField(
        max_length=8, blank=True, help_text="A blocked signal's shadow trade status."
    )
    n = models.BigIntegerField()
    wins = models.BigIntegerField(default=0)
    pnl = models.DecimalField(max_digits=48, decimal_places=30, null=True)
    pnl_sq = models.FloatField(default=0.0)

    class Meta:
        indexes = [
            models.Index(fields=["book", "fact", "grain", "day"], name="rollup_book_fact_day")
        ]

    def __str__(self) -> str:
        return f"{self.fact} {self.day} n={self.n}"


class RollupState(models.Model):
    """The rollup definitions a book's rollups were built with, and the newest signal
    they have seen: a book without one, with an older ``version`` or with a signal
    written outside the engine's write path (a fixture, a repair in the shell) is
    rebuilt from its rows before a page reads it."""

    book = models.OneToOneField("signals.Book", on_delete=models.CASCADE, related_name="+")
    version = models.IntegerField()
    newest_signal = models.BigIntegerField(
        default=0, help_text="The book's newest signal id when the rollups were last written."
    )
    months_until = models.DateField(
        null=True,
        blank=True,
        help_text="The month rows sum the day rows before this day; later day rows are read "
        "as they are (empty: the month rows sum every day row).",
    )
    built_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rollups of book {self.book_id} (version {self.version})"


class LatencyHistogram(models.Model):
    """How many of a book's decisions waited how long, per UTC day of the decision and
    of the signal's candle: the health page's all-time decision latency reads these rows
    instead of every decision (``shadow.latency``). The wait is the decision's wall-clock
    time minus its candle's close; ``bucket`` 0 holds waits under a millisecond either
    way, bucket ``k > 0`` the waits in ``[0.001 * 1.01 ** (k - 1), 0.001 * 1.01 ** k)``
    seconds and ``-k`` the same waits negative. Kept with the rollups, in the
    transaction of every write: a write re-sums the candle days it touched."""

    book = models.ForeignKey("signals.Book", on_delete=models.CASCADE, related_name="+")
    candle_day = models.DateField(help_text="The UTC day of the signal's candle (its open).")
    day = models.DateField(help_text="The UTC day of the decision (wall clock).")
    bucket = models.IntegerField(help_text="The wait's bucket (shadow.latency.bucket_bounds).")
    n = models.BigIntegerField(help_text="Decisions of those days in that bucket.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["book", "candle_day", "day", "bucket"], name="latency_book_days_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"latency {self.day} (candles of {self.candle_day}) bucket {self.bucket} n={self.n}"


class EquityMark(models.Model):
    """A book's paper equity marked to market at the last candle close of a UTC day
    (``shadow.equity_marks``): realised P&L of the paper trades closed by then plus the
    open ones marked at that close, quote currency. Kept with the rollups, in the
    transaction of every write; what the summary's sparkline and the performance page's
    equity chart read instead of every trade and candle."""

    book = models.ForeignKey("signals.Book", on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="The UTC day of the close.")
    time = models.BigIntegerField(help_text="The day's last candle close, epoch milliseconds.")
    equity = models.FloatField(help_text="Realised + unrealised P&L at that close.")
    carry = models.JSONField(
        help_text="What the next day's mark starts from: per market the open time of its "
        "last candle by then and its realised P&L, and the ids of the trades not realised."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["book", "day"], name="equity_mark_book_day")]

    def __str__(self) -> str:
        return f"equity {self.day} {self.equity:.2f}"


class EquityMarkState(models.Model):
    """The markets a book's equity marks were computed over (those with a paper trade),
    each with its first entry (epoch ms): a write trading a new market rebuilds them."""

    book = models.OneToOneField("signals.Book", on_delete=models.CASCADE, related_name="+")
    markets = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"equity marks of book {self.book_id}"
