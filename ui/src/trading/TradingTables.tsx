// The chosen paper account's positions with live P&L (unrealised, realised, fees and
// funding each on its own), open orders, order history and fills, with close and cancel.
import { useState, type ReactNode } from "react";
import { failure } from "../account/form";
import { cancelAll, cancelOrder, closeAll, closePosition, isOpen, workingPrice, workingQuantity, workingStop, type Order } from "./api";
import { isFlat } from "./lines";
import { formatAmount, formatDecimal, formatMarketTime, formatPnl, pnlTone, typeLabel } from "./format";
import type { Paper } from "./usePaper";

type Tab = "positions" | "open" | "orders" | "fills";

const DASH = "–";

function Pnl({ value, testid }: { value: string | null | undefined; testid?: string }) {
  return (
    <td className={`num ${pnlTone(value)}`} data-testid={testid}>
      {formatPnl(value)}
    </td>
  );
}

function Empty({ columns, children }: { columns: number; children: ReactNode }) {
  return (
    <tr>
      <td className="trading-empty" colSpan={columns}>
        {children}
      </td>
    </tr>
  );
}

/** A table's header row; `extra` empty columns after (for the row's buttons). */
function Head({ columns, extra = 0 }: { columns: readonly string[]; extra?: number }) {
  return (
    <thead>
      <tr>
        {columns.map((h) => (
          <th key={h} scope="col">
            {h}
          </th>
        ))}
        {Array.from({ length: extra }, (_, i) => (
          <th key={`extra-${i}`} scope="col" />
        ))}
      </tr>
    </thead>
  );
}

const sideClass = (side: string) => (side === "BUY" ? "up" : "down");

function OrderRow({ order, onCancel }: { order: Order; onCancel?: (order: Order) => void }) {
  const { request } = order;
  return (
    <tr data-testid={isOpen(order) ? "open-order-row" : "order-row"} data-client-order-id={request.client_order_id} data-status={order.status}>
      <td>{formatMarketTime(order.created_us)}</td>
      <td>{request.symbol}</td>
      <td className={sideClass(request.side)}>{request.side === "BUY" ? "Buy" : "Sell"}</td>
      <td>
        {typeLabel(request.type)}
        {request.reduce_only ? " · reduce" : ""}
        {request.time_in_force && request.time_in_force !== "GTC" ? ` · ${request.time_in_force}` : ""}
      </td>
      <td className="num" data-testid="order-price">
        {request.type === "market" ? "market" : formatDecimal(workingPrice(order))}
      </td>
      <td className="num">{workingStop(order) ? `${formatDecimal(workingStop(order))}${request.trigger === "mark" ? " mark" : ""}` : DASH}</td>
      <td className="num">{request.quote_quantity && !order.quantity ? `${formatDecimal(request.quote_quantity)} quote` : formatDecimal(workingQuantity(order))}</td>
      <td className="num">{formatDecimal(order.filled_qty ?? "0")}</td>
      <td title={order.reason ?? undefined} data-testid="order-status">
        {order.status.replaceAll("_", " ")}
        {order.reason ? <span className="trading-reason">: {order.reason}</span> : null}
      </td>
      {onCancel && (
        <td>
          <button type="button" className="link-button" data-testid="order-cancel" onClick={() => onCancel(order)} aria-label={`Cancel order ${order.order_id}`}>
            Cancel
          </button>
        </td>
      )}
    </tr>
  );
}

const ORDER_HEAD = ["Time (UTC)", "Symbol", "Side", "Type", "Price", "Stop", "Qty", "Filled", "Status"];

export function TradingTables({ paper }: { paper: Paper }) {
  const [tab, setTab] = useState<Tab>("positions");
  const [error, setError] = useState<string | null>(null);
  const { account, orders, fills } = paper;
  if (!account) return null;
  const id = account.account_id;
  const usdm = account.market === "usdm";
  const open = account.open_orders;
  // A closed position may stay in the view for its realised P&L: the table lists open ones.
  const positions = account.positions.filter((p) => !isFlat(p.qty));

  const act = (work: () => Promise<unknown>) => {
    setError(null);
    work().catch((failed: unknown) => setError(failure(failed).message));
  };
  const cancel = (order: Order) => act(async () => paper.track(await cancelOrder(id, order.request.client_order_id)));

  const tabs: { key: Tab; label: string }[] = [
    { key: "positions", label: usdm ? `Positions (${positions.length})` : "Balances" },
    { key: "open", label: `Open orders (${open.length})` },
    { key: "orders", label: "Order history" },
    { key: "fills", label: "Fills" },
  ];

  return (
    <section className="trading-tables" aria-label="Paper account" data-testid="trading-tables">
      <div className="trading-tabs" role="tablist">
        {tabs.map(({ key, label }) => (
          <button key={key} type="button" role="tab" aria-selected={tab === key} className="trading-tab" data-testid={`trading-tab-${key}`} onClick={() => setTab(key)}>
            {label}
          </button>
        ))}
        <span className="trading-summary" data-testid="trading-summary">
          <span>
            Equity <b data-testid="summary-equity">{formatAmount(account.equity)}</b>
          </span>
          {usdm && (
            <span>
              Unrealised <b className={pnlTone(account.unrealized_pnl)} data-testid="summary-unrealized">{formatPnl(account.unrealized_pnl)}</b>
            </span>
          )}
          <span>
            Realised <b className={pnlTone(account.realized_pnl)}>{formatPnl(account.realized_pnl)}</b>
          </span>
          <span>
            Fees <b>{formatAmount(account.fees ?? "0")}</b>
          </span>
          {usdm && (
            <span>
              Funding <b className={pnlTone(account.funding)}>{formatPnl(account.funding)}</b>
            </span>
          )}
        </span>
        {tab === "positions" && usdm && positions.length > 0 && (
          <button type="button" className="button" data-testid="positions-close-all" onClick={() => act(() => closeAll(id))}>
            Close all
          </button>
        )}
        {tab === "open" && open.length > 0 && (
          <button type="button" className="button" data-testid="orders-cancel-all" onClick={() => act(async () => (await cancelAll(id)).forEach(paper.track))}>
            Cancel all
          </button>
        )}
      </div>
      {error && (
        <p className="ticket-error" role="alert" data-testid="trading-error">
          {error}
        </p>
      )}
      <div className="trading-scroll">
        {tab === "positions" && usdm && (
          <table className="trading-table" data-testid="positions-table">
            <Head columns={["Symbol", "Size", "Entry", "Mark", "Liq. price", "Margin", "Unrealised", "Realised", "Fees", "Funding"]} extra={1} />
            <tbody>
              {positions.length === 0 && <Empty columns={11}>No open position.</Empty>}
              {positions.map((p) => (
                <tr key={p.symbol} data-testid="position-row" data-symbol={p.symbol}>
                  <td>{p.symbol}</td>
                  <td className={`num ${p.qty.startsWith("-") ? "down" : "up"}`} data-testid="position-qty">
                    {formatDecimal(p.qty)}
                  </td>
                  <td className="num">{formatDecimal(p.entry_price)}</td>
                  <td className="num" data-testid="position-mark">{formatDecimal(p.mark_price)}</td>
                  <td className="num">{formatDecimal(p.liquidation_price)}</td>
                  <td>
                    {p.leverage}× {p.margin_mode}
                  </td>
                  <Pnl value={p.unrealized_pnl} testid="position-unrealized" />
                  <Pnl value={p.realized_pnl} testid="position-realized" />
                  <td className="num" data-testid="position-fees">{formatAmount(p.fees ?? "0")}</td>
                  <Pnl value={p.funding} testid="position-funding" />
                  <td>
                    <button type="button" className="link-button" data-testid="position-close" onClick={() => act(() => closePosition(id, p.symbol))} aria-label={`Close the ${p.symbol} position at market`}>
                      Close
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {tab === "positions" && !usdm && (
          <table className="trading-table" data-testid="balances-table">
            <Head columns={["Asset", "Free", "Locked"]} />
            <tbody>
              {account.balances.map((b) => (
                <tr key={b.asset} data-testid="balance-row">
                  <td>{b.asset}</td>
                  <td className="num">{formatDecimal(b.free)}</td>
                  <td className="num">{formatDecimal(b.locked ?? "0")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {(tab === "open" || tab === "orders") && (
          <table className="trading-table" data-testid={tab === "open" ? "open-orders-table" : "orders-table"}>
            <Head columns={ORDER_HEAD} extra={tab === "open" ? 1 : 0} />
            <tbody>
              {tab === "open" && open.length === 0 && <Empty columns={10}>No open order.</Empty>}
              {tab === "open" && open.slice().reverse().map((o) => <OrderRow key={o.order_id} order={o} onCancel={cancel} />)}
              {tab === "orders" && orders.length === 0 && <Empty columns={9}>No order yet.</Empty>}
              {tab === "orders" && orders.map((o) => <OrderRow key={o.order_id} order={o} />)}
            </tbody>
          </table>
        )}
        {tab === "fills" && (
          <table className="trading-table" data-testid="fills-table">
            <Head columns={["Time (UTC)", "Symbol", "Side", "Price", "Qty", "Fee", "Liquidity", "Slippage", "Realised"]} />
            <tbody>
              {fills.length === 0 && <Empty columns={9}>No fill yet.</Empty>}
              {fills.map((f) => (
                <tr key={f.fill_id} data-testid="fill-row" className={f.liquidation ? "liquidation" : undefined}>
                  <td>{formatMarketTime(f.time_us)}</td>
                  <td>{f.symbol}</td>
                  <td className={sideClass(f.side)} data-testid="fill-side">
                    {f.side === "BUY" ? "Buy" : "Sell"}
                    {f.liquidation ? " · liquidation" : ""}
                  </td>
                  <td className="num">{formatDecimal(f.price)}</td>
                  <td className="num" data-testid="fill-qty">
                    {formatDecimal(f.qty)}
                  </td>
                  <td className="num">
                    {formatDecimal(f.fee)} {f.fee_asset}
                  </td>
                  <td data-testid="fill-liquidity">{f.liquidity}</td>
                  <td className="num">{formatDecimal(f.slippage ?? "0")}</td>
                  <Pnl value={f.realized_pnl} />
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
