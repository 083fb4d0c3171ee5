// How the trading views write money: exact decimals rounded for display, P&L signed and
// toned (green a gain, red a loss), market times in UTC.
import { compare, plain, snap, toFixedDigits } from "./decimal";

const DASH = "–";

/** A decimal string rounded to `digits` after the point (half away from zero), exact. */
export function formatAmount(value: string | null | undefined, digits = 2): string {
  if (value === null || value === undefined || value === "") return DASH;
  const step = digits > 0 ? `0.${"0".repeat(digits - 1)}1` : "1";
  const text = toFixedDigits(snap(value, step), digits);
  return text.startsWith("-") && !/[1-9]/.test(text) ? text.slice(1) : text;
}

/** P&L with its sign: "+12.34", "-0.50", "0.00" (a missing value is zero: the API omits zeros). */
export function formatPnl(value: string | null | undefined, digits = 2): string {
  const text = formatAmount(value ?? "0", digits);
  return /[1-9]/.test(text) && !text.startsWith("-") ? `+${text}` : text;
}

/** "up", "down" or "" for a P&L's colour, as it reads once rounded to `digits`. */
export function pnlTone(value: string | null | undefined, digits = 2): "up" | "down" | "" {
  const text = formatAmount(value ?? "0", digits);
  if (!/[1-9]/.test(text)) return "";
  return compare(text, "0") > 0 ? "up" : "down";
}

/** A notional in the quote asset: cents from 1 up, the exact value (trimmed to 8 digits) below. */
export function formatNotional(value: string): string {
  return compare(value.replace("-", ""), "1") >= 0 ? formatAmount(value) : formatAmount(value, 8).replace(/\.?0+$/, "");
}

/** A decimal as the API sent it, written plainly ("0E-8" is "0"); a dash when missing. */
export function formatDecimal(value: string | null | undefined): string {
  return value === null || value === undefined || value === "" ? DASH : plain(value);
}

/** A price or quantity in the digits of its tick or step size ("61807.1" at "0.01": "61807.10"). */
export function formatIn(value: string | null | undefined, digits: number): string {
  if (value === null || value === undefined || value === "") return DASH;
  return toFixedDigits(value, digits);
}

/** A market time in microseconds as "2026-03-07 14:05:09" (UTC). */
export function formatMarketTime(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().slice(0, 19).replace("T", " ");
}

/** An order type as the tables write it. */
export function typeLabel(type: string): string {
  return type === "take_profit_market" ? "take profit" : type.replaceAll("_", " ");
}
