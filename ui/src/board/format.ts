// Number formats of the board: fixed decimals per kind, so digits line up and widths hold.

const DASH = "–";

/** A price with as many decimals as its size needs (BTC 2, a $0.0001 coin 8). */
export function formatPrice(value: number | null): string {
  if (value === null) return DASH;
  const size = Math.abs(value);
  const decimals = size >= 1000 ? 2 : size >= 1 ? 4 : size >= 0.01 ? 6 : 8;
  return value.toFixed(decimals);
}

export function formatPct(value: number | null): string {
  if (value === null) return DASH;
  const digits = value.toFixed(2);
  if (digits === "0.00" || digits === "-0.00") return "0.00%";
  return `${value > 0 ? "+" : ""}${digits}%`;
}

const UNITS: [number, string][] = [
  [1e9, "B"],
  [1e6, "M"],
  [1e3, "K"],
];

/** Quote volume, compact: 1.23M, 456.7K. */
export function formatVolume(value: number | null): string {
  if (value === null) return DASH;
  for (const [size, unit] of UNITS) {
    if (Math.abs(value) >= size) return `${(value / size).toFixed(2)}${unit}`;
  }
  return value.toFixed(0);
}

/** Basis points, signed, one decimal: +12.3 bp. */
export function formatBps(value: number | null): string {
  if (value === null) return DASH;
  const digits = value.toFixed(1);
  if (digits === "0.0" || digits === "-0.0") return "0.0 bp";
  return `${value > 0 ? "+" : ""}${digits} bp`;
}

/** A funding rate in percent, to the exchange's 4 decimals: +0.0100%. */
export function formatRate(value: number | null): string {
  if (value === null) return DASH;
  const digits = value.toFixed(4);
  if (digits === "0.0000" || digits === "-0.0000") return "0.0000%";
  return `${value > 0 ? "+" : ""}${digits}%`;
}

/** A countdown in seconds as h:mm:ss (3:12:05); never below 0:00:00. */
export function formatCountdown(value: number | null): string {
  if (value === null) return DASH;
  const total = Math.max(0, Math.floor(value));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  return `${hours}:${String(minutes).padStart(2, "0")}:${String(seconds).padStart(2, "0")}`;
}

export function formatFixed(decimals: number, suffix = ""): (value: number | null) => string {
  return (value) => (value === null ? DASH : `${value.toFixed(decimals)}${suffix}`);
}

/** Exchange time as the board shows it: UTC, to the second. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}
