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
        indexes = [models.Index(fields=["book", "status"])]

    def __str__(self) -> str:
        return f"shadow #{self.pk} {self.group} {self.side} ({self.status})"
