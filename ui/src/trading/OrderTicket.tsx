// The order ticket beside the chart: side, type, amount, prices, time in force, and for
// USDⓈ-M leverage, margin mode and reduce-only. Checked against the symbol's filters
// before it is sent; a rejection shows the exchange's reason. Enter sends, B and S choose
// the side, Esc clears.
import { useEffect, useId, useState, type FormEvent, type KeyboardEvent } from "react";
import { ApiError } from "../api/client";
import { failure } from "../account/form";
import { placeOrder, setLeverage, type MarginMode, type Market, type OrderType, type Side, type TimeInForce, type TriggerPrice } from "./api";
import { snap } from "./decimal";
import { formatNotional } from "./format";
import { AccountBar } from "./AccountBar";
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

interface Props {
  paper: Paper;
  market: Market;
  symbol: string;
  filters: SymbolFilters | null;
  /** The last trade price, for the notional of market and stop orders. */
  lastPrice?: string;
}

export function OrderTicket({ paper, market, symbol, filters, lastPrice }: Props) {
  const id = useId();
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

  const fieldProps = (field: TicketField) => ({
    "aria-invalid": shown[field] ? true : undefined,
    "aria-describedby": shown[field] ? `${id}-${field}-error` : undefined,
  });
  const fieldError = (field: TicketField) =>
    shown[field] ? (
      <span className="ticket-field-error" id={`${id}-${field}-error`} data-testid={`ticket-error-${field}`}>
        {shown[field]}
      </span>
    ) : null;
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
          <label className="ticket-field">
            <span>Type</span>
            <select data-testid="ticket-type" value={form.type} onChange={(e) => change({ type: e.target.value as OrderType })}>
              {ORDER_TYPES.map(({ type, label }) => (
                <option key={type} value={type}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          {usdm && (
            <div className="ticket-row">
              <label className="ticket-field">
                <span>Leverage</span>
                <input className="number short" data-testid="ticket-leverage" inputMode="numeric" value={leverage} onChange={(e) => setLeverageText(e.target.value)} />
              </label>
              <label className="ticket-field">
                <span>Margin</span>
                <select data-testid="ticket-margin-mode" value={marginMode} onChange={(e) => setMarginMode(e.target.value as MarginMode)}>
                  <option value="cross">Cross</option>
                  <option value="isolated">Isolated</option>
                </select>
              </label>
              <button type="button" className="button ticket-apply" data-testid="ticket-leverage-apply" onClick={applyLeverage}>
                Set
              </button>
            </div>
          )}
          <label className="ticket-field">
            <span>
              Amount ({amountIn === "quote" ? quote : base})
              {takesQuoteAmount(form.type) && (
                <button
                  type="button"
                  className="link-button ticket-unit"
                  data-testid="ticket-amount-unit"
                  onClick={() => change({ amountIn: amountIn === "quote" ? "base" : "quote", amount: "" })}
                  title="Give the amount in the other asset"
                >
                  in {amountIn === "quote" ? base : quote}
                </button>
              )}
            </span>
            <input className="number" data-testid="ticket-amount" inputMode="decimal" autoComplete="off" value={form.amount} onChange={(e) => change({ amount: e.target.value })} {...fieldProps("amount")} />
            {fieldError("amount")}
          </label>
          {takesPrice(form.type) && (
            <label className="ticket-field">
              <span>
                Price ({quote})
                {lastOnTick && (
                  <button type="button" className="link-button ticket-unit" data-testid="ticket-price-last" onClick={() => change({ price: lastOnTick })} title="Use the last price">
                    last
                  </button>
                )}
              </span>
              <input className="number" data-testid="ticket-price" inputMode="decimal" autoComplete="off" value={form.price} onChange={(e) => change({ price: e.target.value })} {...fieldProps("price")} />
              {fieldError("price")}
            </label>
          )}
          {takesStop(form.type) && (
            <div className="ticket-row">
              <label className="ticket-field">
                <span>Stop price ({quote})</span>
                <input className="number" data-testid="ticket-stop" inputMode="decimal" autoComplete="off" value={form.stopPrice} onChange={(e) => change({ stopPrice: e.target.value })} {...fieldProps("stopPrice")} />
                {fieldError("stopPrice")}
              </label>
              {usdm && (
                <label className="ticket-field">
                  <span>Trigger</span>
                  <select data-testid="ticket-trigger" value={form.trigger} onChange={(e) => change({ trigger: e.target.value as TriggerPrice })}>
                    <option value="last">Last</option>
                    <option value="mark">Mark</option>
                  </select>
                </label>
              )}
            </div>
          )}
          {takesTimeInForce(form.type) && (
            <label className="ticket-field">
              <span>Time in force</span>
              <select data-testid="ticket-tif" value={form.timeInForce} onChange={(e) => change({ timeInForce: e.target.value as TimeInForce })}>
                {TIMES_IN_FORCE.map(({ tif, label }) => (
                  <option key={tif} value={tif}>
                    {label}
                  </option>
                ))}
              </select>
            </label>
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
