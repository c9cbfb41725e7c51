"""What the read side records for itself: periodic task heartbeats, recovery runs of
stuck signals, stored reports and threshold recommendations of the learning engine."""

from django.conf import settings
from django.db import models


class TaskHeartbeat(models.Model):
    """The last start, success and failure of one Celery task name (periodic tasks above
    all), written by signal handlers on the worker."""

    task = models.CharField(max_length=200, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Exception class and message, redacted.")
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["task"]

    def __str__(self) -> str:
        return self.task


class RecoveryRun(models.Model):
    """One run of the stuck-signal recovery task: what it found and what it re-queued."""

    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.CharField(max_length=100, help_text="beat, a user name, or a command.")
    stuck_found = models.PositiveIntegerField(default=0)
    actions = models.JSONField(
        default=list, blank=True, help_text="[{signal, book, state, action}, ...]"
    )
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # analytics.roles.START_RECOVERY: the health page's "Run recovery now".
        permissions = [("start_recovery", "Can start a stuck-signal recovery from the pages")]

    def __str__(self) -> str:
        return f"recovery {self.created_at:%Y-%m-%d %H:%M} ({self.stuck_found} stuck)"


class Report(models.Model):
    """A stored report of one book over one period, in every format it was rendered in."""

    book = models.ForeignKey("signals.Book", on_delete=models.CASCADE, related_name="reports")
    period = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=100, help_text="daily task, command, or a user.")
    summary = models.JSONField(default=dict, blank=True, help_text="The report's figures.")
    html = models.TextField(blank=True)
    csv = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.book} {self.period} {self.created_at:%Y-%m-%d %H:%M}"


class ThresholdRecommendation(models.Model):
    """The learning engine's proposal for one guard configuration's numeric threshold,
    from the observed values of past decisions. Nothing changes until someone applies it;
    applying saves a new configuration version (who and when are kept here and in the
    configuration's history)."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        APPLIED = "applied", "applied"
        DISMISSED = "dismissed", "dismissed"
        SUPERSEDED = "superseded", "superseded"

    book = models.ForeignKey("signals.Book", on_delete=models.CASCADE, related_name="+")
    guard_config = models.ForeignKey(
        "signals.GuardConfig", on_delete=models.CASCADE, related_name="recommendations"
    )
    param = models.CharField(max_length=50)
    current_value = models.DecimalField(max_digits=24, decimal_places=8)
    recommended_value = models.DecimalField(max_digits=24, decimal_places=8)
    current_net_impact = models.DecimalField(max_digits=24, decimal_places=8)
    recommended_net_impact = models.DecimalField(max_digits=24, decimal_places=8)
    samples = models.PositiveIntegerField()
    # Why it holds: what thresholds chosen on earlier history gained on later history,
    # its randomisation test against blocking as many signals at random (q after
    # Benjamini-Hochberg across the book's guards) and the share of signals it blocks.
    out_of_sample_gain = models.DecimalField(max_digits=24, decimal_places=8, null=True)
    q_value = models.FloatField(null=True)
    share_blocked = models.FloatField(null=True)
    reason = models.TextField(blank=True)
    curve = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    applied_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.guard_config} {self.param}: {self.current_value} → {self.recommended_value}"


class EquitySegment(models.Model):
    """One UTC day of a book's realised equity path, for one series and group: what the
    leaderboard folds into maximum drawdown, Sharpe and profit factor instead of reading
    every closed trade (``analytics.segments``, docs/rollups.md). Kept with the rollups,
    in the transaction of every write of the book.

    The day's trades are taken in the order the statistics use (exit time, then paper
    before shadow, then id); the running sum starts at 0 at the day's start. ``high`` is
    the highest running sum (>= 0: the empty prefix counts), ``low`` the lowest (<= 0),
    ``fall`` the largest fall of the running sum below its running peak inside the day
    (the peak starting at 0), ``total`` the day's P&L; ``gross_profit`` and
    ``gross_loss`` the sums of the winning trades and of the losing ones (both >= 0);
    ``squares`` the day's P&L squared, ``first`` and ``last`` the day itself (for
    Sharpe).

    A month row (``grain`` = ``month``, ``day`` = the month's first day), written for
    the book's closed months only (those before the month of its last day row, so that
    a live write within the last month rewrites no month row), is its days' segments
    folded in day order: the same measures over the month's trades, ``squares``
    the sum of its days' totals squared, ``first`` and ``last`` its first and last day
    with a trade."""

    class Series(models.TextChoices):
        GUARDED = "guarded", "closed paper trades"
        UNGUARDED = "unguarded", "closed paper trades and closed shadow trades of blocked signals"

    class Grain(models.TextChoices):
        DAY = "day", "one UTC day"
        MONTH = "month", "one calendar month (UTC), folded from its days"

    book = models.ForeignKey("signals.Book", on_delete=models.CASCADE, related_name="+")
    grain = models.CharField(max_length=5, choices=Grain.choices, default=Grain.DAY)
    day = models.DateField(help_text="The trades' UTC exit day, or a month row's first day.")
    series = models.CharField(max_length=9, choices=Series.choices)
    strategy_id = models.BigIntegerField(
        null=True,
        help_text="The strategy version (BookStrategy id); empty: every strategy version "
        "of the book together.",
    )
    symbol = models.CharField(
        max_length=32,
        blank=True,
        help_text="On a book row (no strategy), its trades' symbol, or empty for every "
        "symbol; empty on a strategy's row (a strategy trades one market).",
    )
    n = models.BigIntegerField()
    wins = models.BigIntegerField()
    losses = models.BigIntegerField()
    total = models.DecimalField(max_digits=48, decimal_places=30)
    high = models.DecimalField(max_digits=48, decimal_places=30)
    low = models.DecimalField(max_digits=48, decimal_places=30)
    fall = models.DecimalField(max_digits=48, decimal_places=30)
    gross_profit = models.DecimalField(max_digits=48, decimal_places=30)
    gross_loss = models.DecimalField(max_digits=48, decimal_places=30)
    squares = models.DecimalField(
        max_digits=96, decimal_places=60, help_text="The sum of the days' totals squared."
    )
    first = models.DateField(help_text="The first day with a trade.")
    last = models.DateField(help_text="The last day with a trade.")

    class Meta:
        indexes = [models.Index(fields=["book", "grain", "day"], name="segment_book_grain_day")]

    def __str__(self) -> str:
        return f"{self.series} {self.day} n={self.n}"


class GuardHistogram(models.Model):
    """One UTC candle day of one tunable guard version of a book, one bucket of the
    values its decisions observed: what the learning engine reads instead of one row per
    decision past ``LEARNING_ROW_LIMIT`` decisions (``analytics.learning.histogram``,
    docs/learning-engine.md, ADR 0024). Kept with the rollups, in the transaction of every
    write of the book.

    ``bucket`` -1 holds the decisions with no observed value (they pass at any
    threshold); ``k >= 0`` the observed values between the guard version's ``k``-th and
    ``k+1``-th edge (``analytics.learning.histogram.edges``; which side of an edge a value
    equal to it falls on follows the guard's comparison, so the curve at an edge is
    exact). ``closed`` counts the decisions whose shadow trade closed with a P&L,
    ``pnl`` sums that P&L exactly and ``squares`` its squares; ``alone_*`` the same over
    the decisions of signals no other guard blocked. ``mismatches``: decisions whose
    recorded verdict the comparison at their recorded threshold does not reproduce."""

    book = models.ForeignKey("signals.Book", on_delete=models.CASCADE, related_name="+")
    book_guard = models.ForeignKey("signals.BookGuard", on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="The signals' UTC candle day.")
    bucket = models.IntegerField()
    decisions = models.BigIntegerField()
    closed = models.BigIntegerField()
    pnl = models.DecimalField(max_digits=48, decimal_places=30)
    squares = models.FloatField(help_text="The sum of the closed shadow P&Ls squared.")
    alone_closed = models.BigIntegerField()
    alone_pnl = models.DecimalField(max_digits=48, decimal_places=30)
    alone_squares = models.FloatField()
    mismatches = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["book", "book_guard", "day"], name="guard_histogram_book_day")
        ]

    def __str__(self) -> str:
        return f"{self.book_guard_id} {self.day} bucket {self.bucket}: {self.decisions}"


class FidelityDay(models.Model):
    """One UTC candle day of a book's shadow fidelity, per strategy version, symbol and
    side: what the fidelity page sums instead of comparing every control-group shadow
    trade with its executed trade (``analytics.fidelity_rollup``, docs/rollups.md). Kept
    with the rollups, in the transaction of every write of the book.

    The counts are those of ``analytics.shadow_fidelity``'s pairs of the day (the
    control-group shadow trade of a signal with a paper trade; executed: live when its
    entry order filled, else paper): ``pairs``, ``live``, ``compared`` (either side
    closed), ``exact`` (same exit reason and time, P&L equal to the cent),
    ``disagreements`` and the compared pairs whose exit reason, exit time or P&L (more
    than a cent apart) differ. For each difference (executed minus shadow: entry price,
    exit price, P&L) of the compared pairs: ``*_n`` how many have one (not NULL),
    ``*_sum`` the sum of their absolute values, exact, and ``*_max`` the largest; a
    window's mean is the sum over the count, its max the max of the days'."""

    book = models.ForeignKey("signals.Book", on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="The signals' UTC candle day.")
    strategy_id = models.BigIntegerField(
        null=True, help_text="The signals' strategy version (BookStrategy id), if any."
    )
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=5, help_text="The shadow trade's side.")
    pairs = models.BigIntegerField()
    live = models.BigIntegerField()
    compared = models.BigIntegerField()
    exact = models.BigIntegerField()
    disagreements = models.BigIntegerField()
    reason_differs = models.BigIntegerField()
    time_differs = models.BigIntegerField()
    pnl_differs = models.BigIntegerField()
    entry_n = models.BigIntegerField()
    entry_sum = models.DecimalField(max_digits=96, decimal_places=60, null=True)
    entry_max = models.DecimalField(max_digits=96, decimal_places=60, null=True)
    exit_n = models.BigIntegerField()
    exit_sum = models.DecimalField(max_digits=96, decimal_places=60, null=True)
    exit_max = models.DecimalField(max_digits=96, decimal_places=60, null=True)
    pnl_n = models.BigIntegerField()
    pnl_sum = models.DecimalField(max_digits=96, decimal_places=60, null=True)
    pnl_max = models.DecimalField(max_digits=96, decimal_places=60, null=True)

    class Meta:
        indexes = [models.Index(fields=["book", "day"], name="fidelity_day_book_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.symbol} {self.side}: {self.pairs} pairs"
