// Time-axis labels per interval, in UTC like the rest of the app: a daily chart's ticks
// read "7 Mar", not a bare "7"; intraday ticks read "14:05", with the date at midnight.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** lightweight-charts' TickMarkType, by value (its enum is declared const). */
export const TICK = { Year: 0, Month: 1, DayOfMonth: 2, Time: 3, TimeWithSeconds: 4 } as const;

const two = (n: number) => String(n).padStart(2, "0");

/** The label of a tick at `seconds` (UTC) of kind `type` on a chart of bars `barMs` long. */
export function tickLabel(seconds: number, type: number, barMs: number): string {
  const date = new Date(seconds * 1000);
  const day = `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]}`;
  switch (type) {
    case TICK.Year:
      return String(date.getUTCFullYear());
    case TICK.Month:
      return `${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()}`;
    case TICK.DayOfMonth:
      return day;
    default: {
      const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}`;
      if (barMs < 60_000) return `${time}:${two(date.getUTCSeconds())}`;
      // A day's first tick says which day it is.
      return date.getUTCHours() === 0 && date.getUTCMinutes() === 0 && barMs < 86_400_000 ? day : time;
    }
  }
}

/** The crosshair's time label: the date, and the time of day unless bars are whole days. */
export function crosshairLabel(seconds: number, barMs: number): string {
  const date = new Date(seconds * 1000);
  const day = `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()}`;
  if (barMs >= 86_400_000) return day;
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}`;
  return `${day} ${barMs < 60_000 ? `${time}:${two(date.getUTCSeconds())}` : time}`;
}

/** Empty bars left of a short history: room for the first bar's time label. */
const LEFT_MARGIN_BARS = 3;

/**
 * The logical range that shows `bars` bars at `spacing` px each from the left of a
 * `width` px wide chart, or null when they fill it anyway (the library's own view, the
 * latest bar at the right, is then right).
 */
export function shortHistoryRange(bars: number, width: number, spacing: number, rightOffset: number): { from: number; to: number } | null {
  const capacity = width / spacing;
  if (bars + rightOffset + LEFT_MARGIN_BARS >= capacity) return null;
  return { from: -LEFT_MARGIN_BARS, to: capacity - LEFT_MARGIN_BARS };
}

/** Digits after the point of a decimal string, trailing zeros aside ("61807.70" -> 1). */
export function decimalsOf(value: string): number {
  const point = value.indexOf(".");
  if (point < 0) return 0;
  let end = value.length;
  while (end > point + 1 && value[end - 1] === "0") end--;
  return end - point - 1;
}

/** A decimal string with exactly `precision` digits after the point (exact: no float round trip). */
export function fixed(value: string, precision: number): string {
  const [whole, fraction = ""] = value.split(".");
  const digits = fraction.padEnd(precision, "0").slice(0, precision);
  return precision > 0 ? `${whole}.${digits}` : whole;
}
