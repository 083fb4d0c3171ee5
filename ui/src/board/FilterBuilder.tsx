// The filter builder: markets, quotes, a volume band, a limit and metric conditions.
import { memo, useState, type FormEvent, type Ref } from "react";
import type { Market, ScanFilter, Window } from "../session/types";
import { fromDraft, METRIC_BY_NAME, METRICS, newDraft, OPS, toDraft, withMetric, type DraftCondition } from "./conditions";
import { BOARD_LIMIT } from "./useView";

const MARKETS: { value: Market; label: string }[] = [
  { value: "spot", label: "Spot" },
  { value: "usdm", label: "Perp" },
];
const WINDOWS: Window[] = ["1m", "5m", "15m", "1h", "4h", "24h"];

interface Props {
  filter: ScanFilter;
  /** Quote assets to offer as toggles (the commonest, and any selected). */
  quotes: string[];
  onChange(filter: ScanFilter): void;
  /** The form, for the `/` shortcut. */
  ref?: Ref<HTMLFormElement>;
}

interface Draft {
  conditions: DraftCondition[];
  volumeWindow: Window;
  volumeMin: string;
  volumeMax: string;
  limit: string;
}

const text = (value: number | null | undefined) => (value == null ? "" : String(value));

function draftOf(filter: ScanFilter): Draft {
  return {
    conditions: (filter.conditions ?? []).map(toDraft),
    volumeWindow: filter.volume?.window ?? "24h",
    volumeMin: text(filter.volume?.min),
    volumeMax: text(filter.volume?.max),
    limit: text(filter.limit ?? BOARD_LIMIT),
  };
}

/** The typed part of a filter: it is a draft until applied, and reset when it changes elsewhere. */
const typedPart = (filter: ScanFilter) => JSON.stringify([filter.conditions ?? [], filter.volume ?? null, filter.limit ?? BOARD_LIMIT]);

function toggled<T>(items: readonly T[] | undefined, item: T): T[] {
  const current = items ?? [];
  return current.includes(item) ? current.filter((existing) => existing !== item) : [...current, item];
}

/** A row of on/off buttons; none on means all (the filter's empty list). */
function Toggles<T extends string>({ options, selected, testid, onToggle }: {
  options: { value: T; label: string }[];
  selected: readonly T[] | undefined;
  testid: string;
  onToggle(value: T): void;
}) {
  return options.map(({ value, label }) => (
    <button key={value} type="button" className="toggle" aria-pressed={selected?.includes(value) ?? false} data-testid={`${testid}-${value}`} onClick={() => onToggle(value)}>
      {label}
    </button>
  ));
}

const positive = (value: string): number | null => (value.trim() === "" || !(Number(value) >= 0) ? null : Number(value));

/** Memoised: the board above it re-renders every second, the filter seldom changes. */
export const FilterBuilder = memo(function FilterBuilder({ filter, quotes, onChange, ref }: Props) {
  const [seen, setSeen] = useState(() => typedPart(filter));
  const [draft, setDraft] = useState(() => draftOf(filter));
  if (seen !== typedPart(filter)) {
    setSeen(typedPart(filter));
    setDraft(draftOf(filter));
  }

  const setCondition = (index: number, condition: DraftCondition) =>
    setDraft({ ...draft, conditions: draft.conditions.map((item, at) => (at === index ? condition : item)) });
  const incomplete = draft.conditions.some((condition) => fromDraft(condition) === null);

  const apply = (event: FormEvent) => {
    event.preventDefault();
    if (incomplete) return;
    const min = positive(draft.volumeMin);
    const max = positive(draft.volumeMax);
    const limit = Math.min(BOARD_LIMIT, Math.max(1, Math.round(Number(draft.limit) || BOARD_LIMIT)));
    onChange({
      ...filter,
      conditions: draft.conditions.flatMap((condition) => fromDraft(condition) ?? []),
      volume: min === null && max === null ? null : { window: draft.volumeWindow, min, max },
      limit,
    });
  };

  return (
    <form ref={ref} className="filters" data-testid="filter-builder" aria-label="Filters" onSubmit={apply}>
      <div className="filter-line">
        <span className="group-label">Market</span>
        <Toggles options={MARKETS} selected={filter.markets} testid="market" onToggle={(market) => onChange({ ...filter, markets: toggled(filter.markets, market) })} />
        <span className="group-label">Quote</span>
        <Toggles options={quotes.map((quote) => ({ value: quote, label: quote }))} selected={filter.quotes} testid="quote" onToggle={(quote) => onChange({ ...filter, quotes: toggled(filter.quotes, quote) })} />
        <span className="group-label">Volume</span>
        <select aria-label="Volume window" value={draft.volumeWindow} onChange={(event) => setDraft({ ...draft, volumeWindow: event.target.value as Window })}>
          {WINDOWS.map((window) => (
            <option key={window}>{window}</option>
          ))}
        </select>
        <input className="number" type="number" min="0" step="any" placeholder="min" aria-label="Minimum quote volume" value={draft.volumeMin} onChange={(event) => setDraft({ ...draft, volumeMin: event.target.value })} />
        <input className="number" type="number" min="0" step="any" placeholder="max" aria-label="Maximum quote volume" value={draft.volumeMax} onChange={(event) => setDraft({ ...draft, volumeMax: event.target.value })} />
        <span className="group-label">Limit</span>
        <input className="number short" type="number" min="1" max={BOARD_LIMIT} aria-label="Rows at most" value={draft.limit} onChange={(event) => setDraft({ ...draft, limit: event.target.value })} />
      </div>
      <div className="filter-line">
        {draft.conditions.map((condition, index) => {
          const windows = METRIC_BY_NAME.get(condition.metric)?.windows ?? [];
          return (
            <span className="condition" key={index}>
              <select aria-label="Metric" data-testid="filter-metric" value={condition.metric} onChange={(event) => setCondition(index, withMetric(condition, event.target.value))}>
                {METRICS.map((metric) => (
                  <option key={metric.name} value={metric.name}>
                    {metric.label}
                  </option>
                ))}
              </select>
              <select aria-label="Window" data-testid="filter-window" disabled={windows.length === 0} value={condition.window ?? ""} onChange={(event) => setCondition(index, { ...condition, window: event.target.value as Window })}>
                {windows.length === 0 && <option value="">–</option>}
                {windows.map((window) => (
                  <option key={window}>{window}</option>
                ))}
              </select>
              <select aria-label="Comparison" data-testid="filter-op" value={condition.op} onChange={(event) => setCondition(index, { ...condition, op: event.target.value as DraftCondition["op"] })}>
                {OPS.map((op) => (
                  <option key={op}>{op}</option>
                ))}
              </select>
              <input className="number" type="number" step="any" aria-label="Threshold" data-testid="filter-value" placeholder="value" value={condition.value} onChange={(event) => setCondition(index, { ...condition, value: event.target.value })} />
              {condition.op === "between" && (
                <input className="number" type="number" step="any" aria-label="Upper bound" data-testid="filter-value2" placeholder="and" value={condition.value2} onChange={(event) => setCondition(index, { ...condition, value2: event.target.value })} />
              )}
              <button type="button" className="icon-button" aria-label="Remove condition" onClick={() => setDraft({ ...draft, conditions: draft.conditions.filter((_, at) => at !== index) })}>
                ×
              </button>
            </span>
          );
        })}
        <button type="button" className="button" data-testid="filter-add" onClick={() => setDraft({ ...draft, conditions: [...draft.conditions, newDraft()] })}>
          + Condition
        </button>
        <button type="submit" className="button primary" data-testid="filter-apply" disabled={incomplete} title={incomplete ? "Every condition needs its value" : "Apply (Enter)"}>
          Apply
        </button>
      </div>
    </form>
  );
});
