// The order ticket beside the chart: side, type, amount, prices, time in force, and for
// USDⓈ-M leverage, margin mode and reduce-only. Checked against the symbol's filters
// before it is sent; a rejection shows the exchange's reason. Enter sends, B and S choose
// the side, Esc clears.
import { useEffect, useState, type FormEvent, type KeyboardEvent } from "react";
import { ApiError } from "../api/client";
import { failure } from "../account/form";
import { placeOrder, setLeverage, type MarginMode, type Market, type OrderType, type Side, type TimeInForce, type TriggerPrice } from "./api";
import { snap } from "./decimal";
import { formatNotional } from "./format";
import { AccountBar } from "./AccountBar";
import { Choice, DecimalField } from "./controls";
import { checkTicket, EMPTY_TICKET, ORDER_TYPES, takesPrice, takesQuoteAmount, takesStop, takesTimeInForce, TIMES_IN_FORCE, type SymbolFilters, type TicketField, type TicketForm } from "./ticket";
import type { Paper } from "./usePaper";

const MAX_LEVERAGE = 125;
const DEFAULT_LEVERAGE = 20;

/** The message of a refused request: Binance's wording and code when the API gives them. */
function refusal(error: unknown): string {
  if (error instanceof ApiError) {
    const code = error.details.binance_code;
    return typeof code === "number" ? `${error.message} (${code})` : error.message;
  }
  return failure(error).message;
}

const MARGIN_MODES = [
  { value: "cross", label: "Cross" },
  { value: "isolated", label: "Isolated" },
] as const;
const TRIGGERS = [
  { value: "last", label: "Last" },
  { value: "mark", label: "Mark" },
] as const;

interface Props {
  paper: Paper;
  market: Market;
  symbol: string;
  filters: SymbolFilters | null;
  /** The last trade price, for the notional of market and stop orders. */
  lastPrice?: string;
}

export function OrderTicket({ paper, market, symbol, filters, lastPrice }: Props) {
  const [form, setForm] = useState<TicketForm>(EMPTY_TICKET);
  const [tried, setTried] = useState(false);
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { account } = paper;
  const position = account?.positions.find((p) => p.symbol === symbol);
  const [leverage, setLeverageText] = useState(String(position?.leverage ?? DEFAULT_LEVERAGE));
  const [marginMode, setMarginMode] = useState<MarginMode>(position?.margin_mode ?? "cross");
  const usdm = market === "usdm";

  // The symbol's leverage and margin mode, as the account's position says, once known.
  useEffect(() => {
    if (!position) return;
    setLeverageText(String(position.leverage));
    setMarginMode(position.margin_mode);
  }, [position?.leverage, position?.margin_mode]);

  const change = (fields: Partial<TicketForm>) => {
    setForm((current) => ({ ...current, ...fields }));
    setNotice(null);
  };
  const check = filters ? checkTicket(form, filters, lastPrice) : null;
  const shown = tried ? (check?.errors ?? {}) : {};
  const base = filters?.base_asset ?? symbol;
  const quote = filters?.quote_asset ?? "";
  const amountIn = form.amountIn === "quote" && takesQuoteAmount(form.type) ? "quote" : "base";

  const clear = () => {
    setForm((current) => ({ ...EMPTY_TICKET, side: current.side, type: current.type }));
    setTried(false);
    setError(null);
    setNotice(null);
  };

  const submit = async (event?: FormEvent) => {
    event?.preventDefault();
    if (sending || !account || !check) return;
    setTried(true);
    setNotice(null);
    setError(null);
    if (!check.body) return;
    setSending(true);
    try {
      const order = await placeOrder(account.account_id, check.body);
      paper.track(order);
      setTried(false);
      setNotice(`${order.request.side === "BUY" ? "Buy" : "Sell"} order #${order.order_id} ${order.status.replaceAll("_", " ")}`);
    } catch (failed) {
      setError(refusal(failed));
    } finally {
      setSending(false);
    }
  };

  const applyLeverage = async () => {
    if (!account) return;
    const value = Number(leverage);
    if (!Number.isInteger(value) || value < 1 || value > MAX_LEVERAGE) return setError(`Leverage must be a whole number from 1 to ${MAX_LEVERAGE}.`);
    setError(null);
    try {
      await setLeverage(account.account_id, symbol, value, marginMode);
      setNotice(`${symbol}: ${value}× ${marginMode}`);
    } catch (failed) {
      setError(refusal(failed));
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLFormElement>) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target as HTMLElement;
    if (event.key === "Escape") {
      clear();
      event.preventDefault();
      event.stopPropagation(); // the ticket's Esc does not close the chart
    } else if (event.key === "Enter" && (target instanceof HTMLSelectElement || (target instanceof HTMLInputElement && target.type === "checkbox"))) {
      event.preventDefault();
      void submit();
    } else if ((event.key === "b" || event.key === "B" || event.key === "s" || event.key === "S") && !target.hasAttribute("data-letters")) {
      change({ side: event.key.toLowerCase() === "b" ? "BUY" : "SELL" });
      event.preventDefault();
    }
  };

  /** A decimal field's value, change and error, from the form. */
  const bind = (field: TicketField, testid: string) => ({
    testid,
    value: form[field],
    onChange: (value: string) => change({ [field]: value }),
    error: shown[field],
    errorTestid: `ticket-error-${field}`,
  });
  const lastOnTick = lastPrice && filters?.tick_size ? snap(lastPrice, filters.tick_size) : lastPrice;

  return (
    <section className="ticket" aria-label="Order ticket" data-testid="ticket">
      <AccountBar paper={paper} market={market} />
      {account && (
        <form className="ticket-form" onSubmit={submit} onKeyDown={onKeyDown} noValidate aria-busy={sending} data-side={form.side}>
          <div className="ticket-sides" role="radiogroup" aria-label="Side (B / S)">
            {(["BUY", "SELL"] as Side[]).map((side) => (
              <button
                key={side}
                type="button"
                role="radio"
                aria-checked={form.side === side}
                className={`ticket-side ${side === "BUY" ? "buy" : "sell"}`}
                data-testid={side === "BUY" ? "ticket-buy" : "ticket-sell"}
                onClick={() => change({ side })}
              >
                {side === "BUY" ? (usdm ? "Buy / Long" : "Buy") : usdm ? "Sell / Short" : "Sell"}
              </button>
            ))}
          </div>
          <Choice<OrderType> label="Type" testid="ticket-type" value={form.type} options={ORDER_TYPES} onChange={(type) => change({ type })} />
          {usdm && (
            <div className="ticket-row">
              <label className="ticket-field">
                <span>Leverage</span>
                <input className="number short" data-testid="ticket-leverage" inputMode="numeric" value={leverage} onChange={(e) => setLeverageText(e.target.value)} />
              </label>
              <Choice<MarginMode> label="Margin" testid="ticket-margin-mode" value={marginMode} options={MARGIN_MODES} onChange={setMarginMode} />
              <button type="button" className="button ticket-apply" data-testid="ticket-leverage-apply" onClick={applyLeverage}>
                Set
              </button>
            </div>
          )}
          <DecimalField
            label={`Amount (${amountIn === "quote" ? quote : base})`}
            action={
              takesQuoteAmount(form.type)
                ? {
                    text: `in ${amountIn === "quote" ? base : quote}`,
                    title: "Give the amount in the other asset",
                    testid: "ticket-amount-unit",
                    onClick: () => change({ amountIn: amountIn === "quote" ? "base" : "quote", amount: "" }),
                  }
                : undefined
            }
            {...bind("amount", "ticket-amount")}
          />
          {takesPrice(form.type) && (
            <DecimalField
              label={`Price (${quote})`}
              action={lastOnTick ? { text: "last", title: "Use the last price", testid: "ticket-price-last", onClick: () => change({ price: lastOnTick }) } : undefined}
              {...bind("price", "ticket-price")}
            />
          )}
          {takesStop(form.type) && (
            <div className="ticket-row">
              <DecimalField label={`Stop price (${quote})`} {...bind("stopPrice", "ticket-stop")} />
              {usdm && (
                <Choice<TriggerPrice> label="Trigger" testid="ticket-trigger" value={form.trigger} options={TRIGGERS} onChange={(trigger) => change({ trigger })} />
              )}
            </div>
          )}
          {takesTimeInForce(form.type) && (
            <Choice<TimeInForce> label="Time in force" testid="ticket-tif" value={form.timeInForce} options={TIMES_IN_FORCE} onChange={(timeInForce) => change({ timeInForce })} />
          )}
          {usdm && (
            <label className="check ticket-check">
              <input type="checkbox" data-testid="ticket-reduce-only" checked={form.reduceOnly} onChange={(e) => change({ reduceOnly: e.target.checked })} />
              Reduce only
            </label>
          )}
          <p className="ticket-notional" data-testid="ticket-notional">
            {check?.notional ? `≈ ${formatNotional(check.notional)} ${quote}` : "\u00a0"}
          </p>
          <button type="submit" className={`button ticket-submit ${form.side === "BUY" ? "buy" : "sell"}`} data-testid="ticket-submit" disabled={sending || !filters}>
            {form.side === "BUY" ? "Buy" : "Sell"} {base}
          </button>
          <p className={error ? "ticket-error" : "ticket-notice"} role={error ? "alert" : "status"} data-testid={error ? "ticket-error" : "ticket-notice"}>
            {error ?? notice ?? (filters ? "" : `No trading filters known for ${symbol}.`)}
          </p>
        </form>
      )}
    </section>
  );
}
