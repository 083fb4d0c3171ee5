"""The paper venue: commands and market data in, account events out, in market time.

`PaperEngine` holds every paper account of one engine process, the books of the symbols
they trade and the working orders. Each input (a command, a trade, a quote, a depth
snapshot, a mark price) returns the events it caused, each already applied to its account
through `flows.trading.ledger.apply`, so `restore` of every returned event rebuilds the
same accounts. Time is market time only (`now_us`, the latest exchange time applied); a
command is applied at it. The same inputs give the same events: nothing reads a clock,
makes an id at random or iterates a set unordered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec

from flows.trading import ledger
from flows.trading.book import Book
from flows.trading.commands import Commands
from flows.trading.rules import NO_FRESH_BOOK
from flows.trading.settings import PaperSettings
from flows.trading.state import AccountState
from flows.trading.views import MarketContext, account_view, order_margin
from schemas.depth import BookDepth
from schemas.perps import MarkPrice
from schemas.quotes import Quote
from schemas.symbols import SymbolInfo
from schemas.trades import Trade
from schemas.trading import (
    AccountEvent,
    AccountOpened,
    AccountView,
    Command,
    CommandRefused,
    LedgerEntry,
    OpenAccount,
)


class PaperEngine(Commands):
    """Every paper account of one engine, the books they trade against, their orders.

    Args:
        settings: Fees, leverage cap, margin tiers, book freshness.
        symbols: What the exchanges list (filters, assets); `update_symbols` refreshes it.
    """

    def __init__(self, settings: PaperSettings, symbols: Iterable[SymbolInfo]) -> None:
        super().__init__(settings)
        self._last_views: dict[str, AccountView] = {}
        # What each account's last view was valued from (`_basis`), to skip revaluing an
        # account nothing it depends on has touched.
        self._bases: dict[str, tuple[Any, ...]] = {}
        # Each USDⓈ-M account's order margin as of its seq: marks move it not.
        self._order_margins: dict[str, tuple[int, Decimal]] = {}
        self.update_symbols(symbols)

    def update_symbols(self, symbols: Iterable[SymbolInfo]) -> None:
        """Take new or changed symbol filters (a later listing replaces an earlier one)."""
        for info in symbols:
            self._symbols.setdefault((info.exchange, info.market), {})[info.symbol] = info
        self._bases.clear()  # a view may depend on a symbol's assets

    @property
    def now_us(self) -> int:
        """Market time: the latest exchange time applied."""
        return self._now_us

    def account(self, account_id: str) -> AccountState | None:
        """One account's state, or None when the engine holds no such account."""
        return self._accounts.get(account_id)

    # ---- the log ------------------------------------------------------------------

    def restore(self, events: Iterable[AccountEvent]) -> None:
        """Fold logged events into the accounts, emitting nothing.

        Events at or below an account's `seq` are skipped (a log read twice changes
        nothing), as are events of accounts never opened (refusals of unknown accounts
        carry seq 0). Working orders are rebuilt from the open orders afterwards, and
        market time moves to the latest event's, so nothing after a restart happens
        before what the log holds.
        """
        touched: dict[str, None] = {}
        for event in events:
            self.advance(event.time_us)
            state = self._accounts.get(event.account_id)
            if state is None:
                if isinstance(event, AccountOpened) and event.seq == 1:
                    self._opened(ledger.open_account(event), event)
                    touched[event.account_id] = None
                continue
            if event.seq <= state.seq:
                continue
            self._apply(state, event)
            touched[event.account_id] = None
        for account_id in touched:
            self._reindex(self._accounts[account_id])

    def _opened(self, state: AccountState, event: AccountOpened) -> None:
        self._accounts[state.account_id] = state
        self._recent[state.account_id] = {}
        self._remember(state.account_id, event.command_id)

    # ---- commands -----------------------------------------------------------------

    def command(self, command: Command) -> list[AccountEvent]:
        """Apply one command at market time.

        Returns:
            The events it caused: [] for a command this account already applied (a
            redelivery); a `CommandRefused` with seq 0 for an account that does not
            exist (it belongs to no log).
        """
        state = self._accounts.get(command.account_id)
        if state is not None and command.command_id in self._recent[command.account_id]:
            return []
        if isinstance(command, OpenAccount):
            return self._open(command, state)
        kind = command.__struct_config__.tag
        if state is None:
            refusal = CommandRefused(
                account_id=command.account_id, seq=0, time_us=self._now_us,
                command_id=command.command_id, command=str(kind), reason="Account does not exist.",
            )  # fmt: skip
            return [refusal]
        self._command_id = command.command_id
        try:
            out: list[AccountEvent] = []
            self._dispatch(state, command, out)
            return out
        finally:
            self._command_id = ""

    def _open(self, command: OpenAccount, state: AccountState | None) -> list[AccountEvent]:
        if state is not None or len(self._accounts) >= self._settings.max_accounts:
            reason = "Account already exists." if state is not None else "Too many accounts."
            refusal = CommandRefused(
                account_id=command.account_id, seq=0, time_us=self._now_us,
                command_id=command.command_id, command="open", reason=reason,
            )  # fmt: skip
            if state is None:
                return [refusal]
            self._command_id = command.command_id
            out: list[AccountEvent] = []
            self._emit(state, out, CommandRefused, command="open", reason=reason)
            self._command_id = ""
            return out
        entries = [
            LedgerEntry(asset=asset, kind="deposit", amount=amount, balance_after=amount)
            for asset, amount in sorted(command.balances.items())
            if amount != 0
        ]
        event = AccountOpened(
            account_id=command.account_id, seq=1, time_us=self._now_us,
            command_id=command.command_id, owner=command.owner, name=command.name,
            market=command.market, exchange=command.exchange, venue="paper", entries=entries,
        )  # fmt: skip
        self._opened(ledger.open_account(event), event)
        return [event]

    # ---- market data --------------------------------------------------------------

    def trade(self, trade: Trade) -> list[AccountEvent]:
        """A print: resting limits it reaches fill, stops on the last price trigger."""
        self.advance(trade.time_us)
        key = trade.key
        self._book(key).on_trade(trade)
        out: list[AccountEvent] = []
        self._on_trade(key, trade, out)
        self._expire_waiting(out)
        return out

    def quote(self, quote: Quote) -> list[AccountEvent]:
        """A new best bid/ask: waiting market orders may now execute."""
        time_us = quote.time_us if quote.time_us is not None else quote.received_us
        self.advance(time_us)
        self._book(quote.key).on_quote(quote, time_us)
        return self._book_changed(quote.key)

    def depth(self, depth: BookDepth) -> list[AccountEvent]:
        """A new 20-level snapshot: waiting market orders may now execute."""
        time_us = depth.time_us if depth.time_us is not None else depth.received_us
        self.advance(time_us)
        self._book(depth.key).on_depth(depth, time_us)
        return self._book_changed(depth.key)

    def mark(self, mark: MarkPrice) -> list[AccountEvent]:
        """A USDⓈ-M mark price: funding at a passed funding time, mark-triggered stops,
        then liquidation of what the new mark leaves under maintenance margin (closed at
        the bankruptcy price `flows.trading.futures.close_out_prices` gives; see
        `flows.trading.marks`)."""
        self.advance(mark.time_us)
        out: list[AccountEvent] = []
        self._on_mark(mark, out)
        self._expire_waiting(out)
        return out

    def announce(self, mark: MarkPrice) -> None:
        """Take the funding time a stored mark announced, when no live mark of its symbol
        has come yet: at start, the last mark before a restart, so a funding time that
        passed while the engine was down is paid by the first live mark after it, at
        that stored mark's rate and price, as if the engine had run. Nothing is valued,
        triggered or paid now, and market time does not move."""
        self._announced.setdefault(
            mark.key, (mark.next_funding_time_us, mark.funding_rate, mark.mark_price)
        )

    def advance(self, time_us: int) -> None:
        """Move market time to `time_us` (never back) without applying anything: the
        time of a market record read but not needed, so a command that follows is
        stamped with the market's time even when no account needed its records."""
        self._now_us = max(self._now_us, time_us)

    def _book(self, key: str) -> Book:
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = Book()
        return book

    def _book_changed(self, key: str) -> list[AccountEvent]:
        out: list[AccountEvent] = []
        book = self._books[key]
        fresh = book.is_fresh(self._now_us, self._stale_us)
        # Walk the working orders only when one may have to learn its queue or waits for
        # a fresh book (most updates of a busy symbol need neither).
        if key in self._unlearned or (fresh and key in self._waiting_keys):
            unlearned = False
            for working in self._sorted_working(key):
                if working.waiting_since_us is None:
                    if working.queue.ahead is None:
                        self._learn_queue(working, book)
                elif fresh:
                    state = self._accounts[working.account_id]
                    order = state.orders.get(working.order_id)
                    if order is not None:
                        working.waiting_since_us = None
                        self._work(state, order, out)
                unlearned = unlearned or working.queue.ahead is None
            if not unlearned:
                self._unlearned.pop(key, None)
        self._expire_waiting(out)
        return out

    def _expire_waiting(self, out: list[AccountEvent]) -> None:
        for key in sorted(self._waiting_keys):
            waiting = [w for w in self._sorted_working(key) if w.waiting_since_us is not None]
            if not waiting:
                del self._waiting_keys[key]
            for working in waiting:
                since = working.waiting_since_us
                if since is None or self._now_us - since <= self._wait_us:
                    continue
                state = self._accounts[working.account_id]
                order = state.orders.get(working.order_id)
                if order is not None:
                    self._end(state, order, "expired", NO_FRESH_BOOK, out)

    # ---- views --------------------------------------------------------------------

    def views(self, *, changed_only: bool = True) -> list[AccountView]:
        """Each account valued at the market now.

        Args:
            changed_only: Only accounts whose events or valuation changed since the
                previous call (else every account).
        """
        out: list[AccountView] = []
        for account_id in sorted(self._accounts):
            previous = self._last_views.get(account_id)
            view = self.view(account_id)
            assert view is not None, "every account id has its state"
            unchanged = (
                previous is not None
                and msgspec.structs.replace(previous, time_us=view.time_us) == view
            )
            if not changed_only or not unchanged:
                out.append(view)
        return out

    def view(self, account_id: str) -> AccountView | None:
        """One account valued at the market now (None when there is no such account);
        `views` then counts it changed only when it changes again. Costs one account's
        valuation, where `views` values them all."""
        state = self._accounts.get(account_id)
        if state is None:
            return None
        ctx = self._context(state)
        basis = _basis(state, ctx)
        previous = self._last_views.get(account_id)
        if previous is not None and self._bases.get(account_id) == basis:
            # Same events, same marks and prices: the same view, at this time.
            view = msgspec.structs.replace(previous, time_us=self._now_us)
        else:
            if state.market == "usdm":
                known = self._order_margins.get(account_id)
                if known is None or known[0] != state.seq:
                    reserved = order_margin(state, self._settings.default_leverage)
                    known = self._order_margins[account_id] = (state.seq, reserved)
                ctx = dataclasses.replace(ctx, order_margin=known[1])
            view = account_view(state, ctx, self._now_us)
            self._bases[account_id] = basis
        self._last_views[account_id] = view
        return view

    def watched(self) -> dict[tuple[str, str], list[str]]:
        """(exchange, market) → symbols with open paper orders, sorted: whose depth the
        engine needs."""
        out: dict[tuple[str, str], list[str]] = {}
        for key in sorted(self._working):
            if self._working[key]:
                exchange, market, symbol = key.split(":", 2)
                out.setdefault((exchange, market), []).append(symbol)
        return out


def _basis(state: AccountState, ctx: MarketContext) -> tuple[Any, ...]:
    """What an account's view is computed from besides the settings and symbols: its
    log position, and the marks of its positions (USDⓈ-M) or the value prices of its
    holdings (spot)."""
    if state.market == "spot":
        return (state.seq, *((s, book.value_price()) for s, book in ctx.books.items()))
    return (state.seq, *ctx.marks.items())
