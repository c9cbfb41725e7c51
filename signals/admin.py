"""Admin for books, configuration and the signal side's records.

Configuration (strategies, guards) is edited here. Signals, decisions, transitions and
paper trades are written only by the services, so their pages are read-only.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin  # type: ignore[import-untyped]

from markets.admin_format import compact, money, price, quote_currency, two
from signals.domain.guards import GUARDS
from signals.domain.params import default_params
from signals.domain.strategies import STRATEGIES
from signals.economics import economics_lines
from signals.models import (
    Book,
    BookGuard,
    BookState,
    BookStrategy,
    EquityPoint,
    ExchangeOrder,
    GuardConfig,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalTransition,
    StrategyConfig,
)
from signals.services import guard_config_save, strategy_config_save


class ReadOnlyAdminMixin:
    """Viewable, never added, changed or deleted by hand: the services own these rows."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    show_change_link = True


def _kind_help(registry: dict[str, type]) -> str:
    known = "; ".join(f"{kind}: {default_params(cls)}" for kind, cls in sorted(registry.items()))
    return f"A JSON object; keys not given take their defaults. Defaults per kind: {known}"


class StrategyConfigForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=[(kind, kind) for kind in sorted(STRATEGIES)])

    class Meta:
        model = StrategyConfig
        fields = ["name", "kind", "params", "exchange", "symbol", "timeframe", "enabled", "live"]
        help_texts = {"params": _kind_help(dict(STRATEGIES))}


def _guard_help() -> str:
    releases = "; ".join(f"{kind}: {cls.release}" for kind, cls in sorted(GUARDS.items()))
    return (
        f"{_kind_help(dict(GUARDS))}. How each lets go of a block (stop_minutes is the stop "
        f"duration of a guard with a look-back): {releases}. Live only (it never blocks in "
        f"a replay, where a candle is known at its close): {', '.join(_live_only())}"
    )


def _live_only() -> list[str]:
    return [kind for kind, cls in sorted(GUARDS.items()) if cls.live_only]


def _guard_kinds() -> list[tuple[str, str]]:
    # A callable: a kind registered after this module loaded is offered too.
    return [(kind, kind) for kind in sorted(GUARDS)]


class GuardConfigForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=_guard_kinds)

    class Meta:
        model = GuardConfig
        fields = ["name", "kind", "params", "enabled"]
        help_texts = {"params": _guard_help()}


class BookStrategyInline(ReadOnlyTabularInline):
    model = BookStrategy
    fields = (
        "name",
        "config_version",
        "kind",
        "params",
        "exchange",
        "symbol",
        "timeframe",
        "fee_rate",
        "live",
        "active",
    )
    readonly_fields = fields
    show_change_link = False


class BookGuardInline(ReadOnlyTabularInline):
    model = BookGuard
    fields = ("name", "config_version", "kind", "params", "active")
    readonly_fields = fields
    show_change_link = False


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "signal_count", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    exclude = ("economics",)
    readonly_fields = ("economics_frozen", "created_at")
    inlines = (BookStrategyInline, BookGuardInline)

    @admin.display(description="economics (frozen at the start)")
    def economics_frozen(self, obj: Book) -> str:
        return format_html_join(
            "", "<div>{}</div>", ((line,) for line in economics_lines(obj.economics))
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Book]:
        return super().get_queryset(request).annotate(signal_count=Count("signals"))

    @admin.display(description="signals", ordering="signal_count")
    def signal_count(self, obj: Book) -> int:
        return getattr(obj, "signal_count", 0)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Bulk deletion would reach the live book too.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Book | None = None) -> bool:
        if obj is not None and obj.kind == Book.Kind.LIVE:
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        # A replay book's records are read-only one by one but go with their run: the
        # permission to delete the book is the permission to delete what it holds.
        return deleted, counts, set(), protected


class ConfigHistoryAdmin(SimpleHistoryAdmin):
    """A configuration's admin with its history: each save (and each revert to an old
    row) goes through the service that raises the version, and the history page lists
    who saved which version when, with the fields that changed."""

    history_list_display = ["version"]

    def save_config(self, config: Any) -> None:
        raise NotImplementedError

    def save_model(
        self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool
    ) -> None:
        obj._history_user = request.user
        if change:
            # A revert form carries the old row's version, a form opened before someone
            # else saved a stale one; the service raises the version it is given.
            current = type(obj).objects.filter(pk=obj.pk).values_list("version", flat=True)
            if current:
                obj.version = current[0]
        self.save_config(obj)


@admin.register(StrategyConfig)
class StrategyConfigAdmin(ConfigHistoryAdmin):
    form = StrategyConfigForm
    list_display = (
        "name",
        "kind",
        "exchange",
        "symbol",
        "timeframe",
        "enabled",
        "version",
        "updated_at",
    )
    list_filter = ("enabled", "kind", "exchange", "timeframe")
    search_fields = ("name", "symbol")
    readonly_fields = ("version",)

    def save_config(self, config: StrategyConfig) -> None:
        strategy_config_save(config=config)


@admin.register(GuardConfig)
class GuardConfigAdmin(ConfigHistoryAdmin):
    form = GuardConfigForm
    list_display = ("name", "kind", "live_only", "enabled", "params", "version", "updated_at")
    list_filter = ("enabled", "kind")
    readonly_fields = ("version",)

    def save_config(self, config: GuardConfig) -> None:
        guard_config_save(config=config)

    @admin.display(boolean=True, description="live only")
    def live_only(self, obj: GuardConfig) -> bool:
        """Whether the guard can block only in a live run (a replay has no data delay)."""
        return bool(getattr(GUARDS.get(obj.kind), "live_only", False))


@admin.register(BookState)
class BookStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("book", "revision", "updated_at")
    list_select_related = ("book",)


def book_currency(book_id: int) -> str:
    """The quote currency of a book's markets ("quote" when they mix several)."""
    symbols = BookStrategy.objects.filter(book_id=book_id).values_list("symbol", flat=True)
    currencies = {quote_currency(symbol) for symbol in symbols.distinct()}
    return currencies.pop() if len(currencies) == 1 else "quote"


@admin.register(EquityPoint)
class EquityPointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("book", "time", "equity_display")
    list_filter = ("book",)
    list_select_related = ("book",)
    fields = ("book", "time", "equity_display")
    readonly_fields = fields

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        self._currencies: dict[int, str] = {}  # one query per book shown, not per row
        return super().changelist_view(request, extra_context)

    @admin.display(description="Realised equity", ordering="equity")
    def equity_display(self, obj: EquityPoint) -> str:
        currencies = getattr(self, "_currencies", {})
        if obj.book_id not in currencies:
            currencies[obj.book_id] = book_currency(obj.book_id)
        return money(obj.equity, currencies[obj.book_id])


def config_history_link(config_id: int | None, version: int, model: str) -> str:
    """``v<version>``, linked to the configuration's history while the configuration exists."""
    if config_id is None:
        return f"v{version}"
    url = reverse(f"admin:signals_{model}_history", args=[config_id])
    return format_html('<a href="{}">v{}</a>', url, version)


class DecisionValuesMixin:
    """A verdict's observed value and threshold in its guard kind's unit (money in the
    market's quote currency). Querysets must select the decision's signal and book guard."""

    @staticmethod
    def _value(obj: GuardDecision, value: Any) -> str:
        kind = obj.book_guard.kind if obj.book_guard is not None else ""
        unit = getattr(GUARDS.get(kind) or GUARDS.get(obj.guard), "unit", "")
        if unit == "quote":
            return money(value, quote_currency(obj.signal.symbol))
        return compact(value, unit)

    @admin.display(description="Observed value", ordering="observed_value")
    def observed_display(self, obj: GuardDecision) -> str:
        return self._value(obj, obj.observed_value)

    @admin.display(description="Threshold", ordering="threshold")
    def threshold_display(self, obj: GuardDecision) -> str:
        return self._value(obj, obj.threshold)


class GuardDecisionInline(DecisionValuesMixin, ReadOnlyTabularInline):
    model = GuardDecision
    fields = (
        "guard",
        "guard_version",
        "verdict",
        "observed_display",
        "threshold_display",
        "reason",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[GuardDecision]:
        return super().get_queryset(request).select_related("book_guard", "signal")

    @admin.display(description="configuration version")
    def guard_version(self, obj: GuardDecision) -> str:
        if obj.book_guard is None:
            return "-"
        frozen = obj.book_guard
        return config_history_link(frozen.config_id, frozen.config_version, "guardconfig")


class SignalTransitionInline(ReadOnlyTabularInline):
    model = SignalTransition
    fields = ("simulated_at", "created_at", "name", "from_state", "to_state", "actor", "payload")
    readonly_fields = fields


# The fill model's outcome of a paper or shadow trade, laid out in rows; the numbers go
# through ``TradeFiguresMixin``'s columns, never the raw 12-decimal fields.
TRADE_OUTCOME_FIELDSETS = (
    ("status", "side", "quantity_display"),
    ("entry_time", "entry_price_display"),
    ("exit_time", "exit_price_display", "exit_reason"),
    ("pnl_display", "fees_display", "return_display", "r_display"),
    ("mae_display", "mfe_display"),
)


class TradeFiguresMixin:
    """A paper or shadow trade's numbers as a trader reads them: money to the cent in its
    market's quote currency, prices to six significant digits, R and % to two decimals.
    Each column sorts by its stored value. Querysets must select the trade's signal."""

    @staticmethod
    def _currency(obj: Any) -> str:
        return quote_currency(obj.signal.symbol)

    @admin.display(description="Quantity (base currency)", ordering="quantity")
    def quantity_display(self, obj: Any) -> str:
        return price(obj.quantity)

    @admin.display(description="Entry price", ordering="entry_price")
    def entry_price_display(self, obj: Any) -> str:
        return price(obj.entry_price, self._currency(obj))

    @admin.display(description="Exit price", ordering="exit_price")
    def exit_price_display(self, obj: Any) -> str:
        return price(obj.exit_price, self._currency(obj))

    @admin.display(description="Fees", ordering="fees")
    def fees_display(self, obj: Any) -> str:
        return money(obj.fees, self._currency(obj))

    @admin.display(description="P&L", ordering="pnl")
    def pnl_display(self, obj: Any) -> str:
        return money(obj.pnl, self._currency(obj))

    @admin.display(description="Return", ordering="return_pct")
    def return_display(self, obj: Any) -> str:
        return two(obj.return_pct, "%")

    @admin.display(description="R multiple", ordering="r_multiple")
    def r_display(self, obj: Any) -> str:
        return two(obj.r_multiple, "R")

    @admin.display(description="Max adverse excursion", ordering="mae")
    def mae_display(self, obj: Any) -> str:
        return two(obj.mae, "%")

    @admin.display(description="Max favourable excursion", ordering="mfe")
    def mfe_display(self, obj: Any) -> str:
        return two(obj.mfe, "%")


class PaperTradeInline(TradeFiguresMixin, ReadOnlyAdminMixin, admin.StackedInline):
    model = PaperTrade
    extra = 0
    show_change_link = True
    fields = TRADE_OUTCOME_FIELDSETS
    readonly_fields = tuple(name for row in TRADE_OUTCOME_FIELDSETS for name in row)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PaperTrade]:
        return super().get_queryset(request).select_related("signal")


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "book",
        "candle_time",
        "symbol",
        "side",
        "entry_price_display",
        "state",
        "strategy_config",
    )
    list_filter = ("book", "state", "side", "symbol")
    list_select_related = ("book", "strategy_config")
    search_fields = ("symbol", "reason")
    date_hierarchy = "candle_time"
    # The state is an FSM-protected field: it changes only through the transitions.
    readonly_fields = (
        "decisions_page_link",
        "book",
        "strategy_config",
        "strategy_version",
        "state",
        "exchange",
        "symbol",
        "timeframe",
        "candle_time",
        "side",
        "entry_price_display",
        "stop_loss_display",
        "take_profit_display",
        "max_hold_candles",
        "reason",
        "created_at",
        "decided_at",
        "shadow_trade_link",
    )
    fields = readonly_fields
    inlines = (GuardDecisionInline, SignalTransitionInline, PaperTradeInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Signal]:
        return super().get_queryset(request).select_related("book_strategy")

    @admin.display(description="Entry price", ordering="entry_price")
    def entry_price_display(self, obj: Signal) -> str:
        return price(obj.entry_price, quote_currency(obj.symbol))

    @admin.display(description="Stop loss", ordering="stop_loss")
    def stop_loss_display(self, obj: Signal) -> str:
        return price(obj.stop_loss, quote_currency(obj.symbol))

    @admin.display(description="Take profit", ordering="take_profit")
    def take_profit_display(self, obj: Signal) -> str:
        return price(obj.take_profit, quote_currency(obj.symbol))

    @admin.display(description="decisions page")
    def decisions_page_link(self, obj: Signal) -> str:
        # By URL name: the signal side never imports analytics.
        try:
            url = reverse("analytics:signal", args=[obj.pk])
        except NoReverseMatch:
            return "-"
        return format_html(
            '<a href="{}">every guard\'s verdict, the versions and the transitions</a>', url
        )

    @admin.display(description="strategy configuration version")
    def strategy_version(self, obj: Signal) -> str:
        if obj.book_strategy is None:
            return "-"
        frozen = obj.book_strategy
        return config_history_link(frozen.config_id, frozen.config_version, "strategyconfig")

    @admin.display(description="shadow trade")
    def shadow_trade_link(self, obj: Signal) -> str:
        # By URL name: the signal side never imports shadow.
        try:
            url = reverse("admin:shadow_shadowtrade_changelist")
        except NoReverseMatch:
            return "-"
        return format_html(
            '<a href="{}?signal__id__exact={}">shadow trade of this signal</a>', url, obj.pk
        )


@admin.register(GuardDecision)
class GuardDecisionAdmin(DecisionValuesMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "guard",
        "verdict",
        "observed_display",
        "threshold_display",
        "signal",
        "created_at",
    )
    list_filter = ("verdict", "guard", "signal__book")
    list_select_related = ("signal", "book_guard")
    search_fields = ("guard", "reason")
    fields = (
        "signal",
        "guard",
        "book_guard",
        "verdict",
        "observed_display",
        "threshold_display",
        "reason",
        "created_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[GuardDecision]:
        return super().get_queryset(request).select_related("signal", "book_guard")


@admin.register(SignalTransition)
class SignalTransitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "simulated_at",
        "created_at",
        "signal",
        "name",
        "from_state",
        "to_state",
        "actor",
    )
    list_filter = ("to_state", "name", "actor", "signal__book")
    list_select_related = ("signal",)


@admin.register(PaperTrade)
class PaperTradeAdmin(TradeFiguresMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "signal",
        "side",
        "status",
        "exit_reason",
        "pnl_display",
        "r_display",
        "entry_time",
        "exit_time",
    )
    list_filter = ("status", "exit_reason", "side", "book")
    list_select_related = ("signal",)
    fields = (("book", "signal"), *TRADE_OUTCOME_FIELDSETS, ("created_at", "closed_at"))
    readonly_fields = tuple(name for row in fields for name in row)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PaperTrade]:
        return super().get_queryset(request).select_related("signal", "book")


@admin.register(ExchangeOrder)
class ExchangeOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "book",
        "signal",
        "purpose",
        "side",
        "amount_display",
        "symbol",
        "status",
        "filled_display",
        "average_price_display",
        "fee_display",
    )
    list_filter = ("status", "purpose", "book", "exchange")
    list_select_related = ("book", "signal")
    search_fields = ("client_order_id", "exchange_order_id")

    @admin.display(description="Amount (base currency)", ordering="amount")
    def amount_display(self, obj: ExchangeOrder) -> str:
        return price(obj.amount)

    @admin.display(description="Filled (base currency)", ordering="filled")
    def filled_display(self, obj: ExchangeOrder) -> str:
        return price(obj.filled)

    @admin.display(description="Average fill price", ordering="average_price")
    def average_price_display(self, obj: ExchangeOrder) -> str:
        return price(obj.average_price, quote_currency(obj.symbol))

    @admin.display(description="Fee", ordering="fee_cost")
    def fee_display(self, obj: ExchangeOrder) -> str:
        return money(obj.fee_cost, obj.fee_currency)
