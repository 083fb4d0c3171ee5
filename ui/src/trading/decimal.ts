// Exact decimal arithmetic on the API's decimal strings: prices and quantities are snapped
// to the symbol's tick and step sizes without a float round trip ("0.1" + "0.2" stays 0.3).

/** A decimal as an integer of units of 10^-scale: "12.340" is {units: 12340n, scale: 3}. */
interface Exact {
  units: bigint;
  scale: number;
}

/** A decimal as the API may write it: Python's Decimal gives "0E-8" for a zero of 8 digits. */
const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Whether `text` is a plain decimal number ("12", "0.5", ".5", "-3.25"); no exponent. */
export function isDecimal(text: string): boolean {
  const match = DECIMAL.exec(text.trim());
  return match !== null && match[4] === undefined && (match[2] + (match[3] ?? "")).length > 0;
}

function parse(text: string): Exact {
  const match = DECIMAL.exec(text.trim());
  if (!match || (match[2] + (match[3] ?? "")).length === 0) throw new RangeError(`not a decimal: ${text}`);
  const [, sign, whole, fraction = "", exponent = "0"] = match;
  let units = BigInt((whole || "0") + fraction);
  let scale = fraction.length - Number(exponent);
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { units: sign === "-" ? -units : units, scale };
}

/** The exact plain form of a decimal string: "0E-8" is "0", "1.50E+3" is "1500". */
export function plain(value: string): string {
  const x = parse(value);
  return render(x.units, x.scale);
}

function rescale(value: Exact, scale: number): bigint {
  return value.units * 10n ** BigInt(scale - value.scale);
}

function render(units: bigint, scale: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  let fraction = scale > 0 ? digits.slice(digits.length - scale) : "";
  fraction = fraction.replace(/0+$/, "");
  const text = fraction ? `${whole}.${fraction}` : whole;
  return negative && /[1-9]/.test(text) ? `-${text}` : text;
}

/** -1, 0 or 1 as `a` is below, equal to or above `b`. */
export function compare(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  const d = rescale(x, scale) - rescale(y, scale);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** a × b, exact, trailing zeros dropped. */
export function multiply(a: string, b: string): string {
  const x = parse(a);
  const y = parse(b);
  return render(x.units * y.units, x.scale + y.scale);
}

/** a + b, exact. */
export function add(a: string, b: string): string {
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  return render(rescale(x, scale) + rescale(y, scale), scale);
}

/** a − b, exact. */
export function subtract(a: string, b: string): string {
  return add(a, b.startsWith("-") ? b.slice(1) : `-${b}`);
}

/** How to round onto a grid of steps. */
export type Rounding = "down" | "up" | "nearest";

/**
 * `value` rounded to a whole number of `step`s (a tick size, a lot step), in the step's
 * digits: snap("61807.123", "0.1") is "61807.1". "down" goes toward zero, "up" away from
 * it, "nearest" to the closer (a half goes away from zero). A step of 0 leaves it as is.
 */
export function snap(value: string, step: string, rounding: Rounding = "nearest"): string {
  const x = parse(value);
  const s = parse(step);
  if (s.units === 0n) return render(x.units, x.scale);
  const scale = Math.max(x.scale, s.scale);
  const units = rescale(x, scale);
  const size = rescale(s, scale) < 0n ? -rescale(s, scale) : rescale(s, scale);
  const negative = units < 0n;
  const magnitude = negative ? -units : units;
  let steps = magnitude / size;
  const rest = magnitude % size;
  if (rest !== 0n && (rounding === "up" || (rounding === "nearest" && rest * 2n >= size))) steps += 1n;
  const snapped = steps * size;
  return render(negative ? -snapped : snapped, scale);
}

/** Whether `value` is a whole number of `step`s. */
export function onStep(value: string, step: string): boolean {
  return compare(snap(value, step, "down"), value) === 0;
}

/** Digits after the point of a step size ("0.010" → 2, "1" → 0). */
export function stepDigits(step: string): number {
  const text = render(parse(step).units, parse(step).scale);
  const point = text.indexOf(".");
  return point < 0 ? 0 : text.length - point - 1;
}

/** A number (a chart coordinate's price) as a decimal string snapped to `step`. */
export function snapNumber(value: number, step: string, rounding: Rounding = "nearest"): string {
  // Beyond the step's digits, enough of the float's own that rounding it once is exact.
  const digits = Math.min(20, stepDigits(step) + 10);
  return snap(value.toFixed(digits), step, rounding);
}

/** `value` with exactly `digits` after the point, truncated or padded (exact). */
export function toFixedDigits(value: string, digits: number): string {
  const x = parse(value);
  const units = digits >= x.scale ? rescale(x, digits) : x.units / 10n ** BigInt(x.scale - digits);
  const negative = units < 0n;
  const text = (negative ? -units : units).toString().padStart(digits + 1, "0");
  const body = digits > 0 ? `${text.slice(0, text.length - digits)}.${text.slice(text.length - digits)}` : text;
  return negative && /[1-9]/.test(body) ? `-${body}` : body;
}
