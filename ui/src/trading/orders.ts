// How what the API sends merges into what the views hold, pure: an order update replaces
// the order's older self (never a newer one that came first), open orders follow status,
// and the equity curve has one point per second.
import type { UTCTimestamp } from "lightweight-charts";
import { isOpen, type AccountView, type EquityPoint, type Order } from "./api";

/**
 * Whether `a` is a later state of the order than `b`: a later market time, or at the same
 * time more filled or no longer open (an answer to the placement can arrive after the
 * update of its fill, both at the same market time).
 */
export function isLater(a: Order, b: Order): boolean {
  if (a.updated_us !== b.updated_us) return a.updated_us > b.updated_us;
  const filled = Number(a.filled_qty ?? 0) - Number(b.filled_qty ?? 0);
  if (filled !== 0) return filled > 0;
  return isOpen(b) && !isOpen(a);
}

/** An order put in a newest-first list in place of its older self. */
export function upsertOrder(orders: readonly Order[], order: Order): Order[] {
  const at = orders.findIndex((o) => o.order_id === order.order_id);
  if (at < 0) return [order, ...orders].sort((a, b) => b.order_id - a.order_id);
  // An older update arriving late never replaces a newer one.
  if (orders[at] !== order && isLater(orders[at], order)) return orders as Order[];
  const next = orders.slice();
  next[at] = order;
  return next;
}

/**
 * The view with an order's open state updated (an order update can beat the view's). An
 * update older than the view changes nothing: the view already has what followed it.
 */
export function withOrder(view: AccountView, order: Order): AccountView {
  const rest = view.open_orders.filter((o) => o.order_id !== order.order_id);
  const held = view.open_orders.find((o) => o.order_id === order.order_id);
  if (held ? isLater(held, order) : order.updated_us < view.time_us) return view;
  const open = isOpen(order) ? [...rest, order].sort((a, b) => a.order_id - b.order_id) : rest;
  return { ...view, open_orders: open };
}

/** Points of the curve, in seconds (the library's time) with one point per second at most. */
export function equityPoints(history: readonly EquityPoint[]): { time: UTCTimestamp; value: number }[] {
  const bySecond = new Map<number, number>();
  for (const point of history) bySecond.set(Math.floor(point.time_ms / 1000), Number(point.equity));
  return [...bySecond].sort((a, b) => a[0] - b[0]).map(([time, value]) => ({ time: time as UTCTimestamp, value }));
}
