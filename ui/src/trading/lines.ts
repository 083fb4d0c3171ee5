// What a paper account draws on a symbol's chart, pure: its position's entry and
// liquidation price, and each resting order's price and stop price with its side and
// quantity. Resting prices can be dragged to amend them.
import type { AccountView, Order } from "./api";
import { workingPrice, workingQuantity, workingStop } from "./api";
import { add, compare, multiply, plain, snap } from "./decimal";
import { formatPnl } from "./format";

export const LINE_COLOURS = {
  buy: "#26a69a",
  sell: "#ef5350",
  entryLong: "#4c8dff",
  entryShort: "#b388ff",
  liquidation: "#ff9800",
} as const;

/** One horizontal line at a price. */
export interface TradeLine {
  /** Stable across updates: `entry`, `liq`, `order:<client id>:price|stop`. */
  id: string;
  kind: "entry" | "liquidation" | "order";
  price: string;
  color: string;
  /** The label on the line and in the chart's list of lines. */
  title: string;
  dashed: boolean;
  /** Dragging it amends this order's price or stop price. */
  amend?: { clientOrderId: string; field: "price" | "stop_price"; order: Order };
}

function orderLines(order: Order): TradeLine[] {
  const { request } = order;
  const side = request.side === "BUY" ? "Buy" : "Sell";
  const color = request.side === "BUY" ? LINE_COLOURS.buy : LINE_COLOURS.sell;
  const qty = plain(workingQuantity(order));
  const clientOrderId = request.client_order_id;
  const lines: TradeLine[] = [];
  const stop = workingStop(order);
  const price = workingPrice(order);
  const kind = request.type === "take_profit_market" ? "TP" : "stop";
  // A triggered stop-limit works as a limit order: its stop no longer matters.
  if (stop && !order.triggered) {
    lines.push({ id: `order:${clientOrderId}:stop`, kind: "order", price: plain(stop), color, title: `${side} ${kind} ${qty}`, dashed: true, amend: { clientOrderId, field: "stop_price", order } });
  }
  if (price) {
    lines.push({ id: `order:${clientOrderId}:price`, kind: "order", price: plain(price), color, title: `${side} ${qty}`, dashed: false, amend: { clientOrderId, field: "price", order } });
  }
  return lines;
}

/** Whether a position's signed size is zero ("0", "-0.000"): nothing is open. */
export const isFlat = (qty: string) => compare(qty, "0") === 0;

/** The lines of `account` on `symbol`'s chart: position first, then orders by id. */
export function tradeLines(account: AccountView | null, symbol: string): TradeLine[] {
  if (!account) return [];
  const lines: TradeLine[] = [];
  const position = account.positions.find((p) => p.symbol === symbol && !isFlat(p.qty));
  if (position) {
    const long = !position.qty.startsWith("-");
    lines.push({
      id: "entry",
      kind: "entry",
      price: plain(position.entry_price),
      color: long ? LINE_COLOURS.entryLong : LINE_COLOURS.entryShort,
      title: `${long ? "Long" : "Short"} ${plain(position.qty).replace(/^-/, "")} ${formatPnl(position.unrealized_pnl)}`,
      dashed: false,
    });
    if (position.liquidation_price) {
      lines.push({ id: "liq", kind: "liquidation", price: plain(position.liquidation_price), color: LINE_COLOURS.liquidation, title: "Liq.", dashed: true });
    }
  }
  const orders = account.open_orders.filter((o) => o.request.symbol === symbol).sort((a, b) => a.order_id - b.order_id);
  for (const order of orders) lines.push(...orderLines(order));
  return lines;
}

/** `price` moved `ticks` ticks up (negative: down) on the tick grid; unchanged if that is not above zero. */
export function stepPrice(price: string, tick: string, ticks: number): string {
  const moved = snap(add(price, multiply(tick, String(ticks))), tick);
  return compare(moved, "0") > 0 ? moved : price;
}
