// The filter builder: markets, quotes, a volume band, a limit, metric conditions that must all
// hold, and "any of" groups of which one condition must hold.
import { memo, useState, type FormEvent, type Ref } from "react";
import type { Market, ScanFilter, Window } from "../session/types";
import { describeCondition, fromDraft, METRIC_BY_NAME, METRICS, newDraft, OPS, toDraft, withMetric, withOp, withOther, type DraftCondition } from "./conditions";
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
  /** OR groups, each a list of conditions. */
  groups: DraftCondition[][];
  volumeWindow: Window;
  volumeMin: string;
  volumeMax: string;
  limit: string;
}

const text = (value: number | null | undefined) => (value == null ? "" : String(value));

function draftOf(filter: ScanFilter): Draft {
  return {
    conditions: (filter.conditions ?? []).map(toDraft),
    groups: (filter.groups ?? []).map((group) => group.any.map(toDraft)),
    volumeWindow: filter.volume?.window ?? "24h",
    volumeMin: text(filter.volume?.min),
    volumeMax: text(filter.volume?.max),
    limit: text(filter.limit ?? BOARD_LIMIT),
  };
}

/** The typed part of a filter: it is a draft until applied, and reset when it changes elsewhere. */
const typedPart = (filter: ScanFilter) => JSON.stringify([filter.conditions ?? [], filter.groups ?? [], filter.volume ?? null, filter.limit ?? BOARD_LIMIT]);

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

const metricOptions = METRICS.map((metric) => (
  <option key={metric.name} value={metric.name} title={metric.title}>
    {metric.label}
  </option>
));

/** One condition's controls: metric, window, comparison, and a number or another metric × factor. */
function ConditionEditor({ condition, onChange, onRemove }: { condition: DraftCondition; onChange(condition: DraftCondition): void; onRemove(): void }) {
  const remove = (
    <button type="button" className="icon-button" aria-label="Remove condition" data-testid="filter-remove" onClick={onRemove}>
      ×
    </button>
  );
  if (condition.fixed) {
    return (
      <span className="condition" data-testid="filter-condition">
        <span className="fixed-condition" title="Made outside the builder: remove it to change it">
          {describeCondition(condition.fixed)}
        </span>
        {remove}
      </span>
    );
  }
  const windows = METRIC_BY_NAME.get(condition.metric)?.windows ?? [];
  const otherWindows = METRIC_BY_NAME.get(condition.other)?.windows ?? [];
  const number = (label: string, testid: string, value: string, set: (text: string) => void, placeholder: string) => (
    <input className="number" type="number" step="any" aria-label={label} data-testid={testid} placeholder={placeholder} value={value} onChange={(event) => set(event.target.value)} />
  );
  return (
    <span className="condition" data-testid="filter-condition">
      <select aria-label="Metric" data-testid="filter-metric" value={condition.metric} onChange={(event) => onChange(withMetric(condition, event.target.value))}>
        {metricOptions}
      </select>
      <select aria-label="Window" data-testid="filter-window" disabled={windows.length === 0} value={condition.window ?? ""} onChange={(event) => onChange({ ...condition, window: event.target.value as Window })}>
        {windows.length === 0 && <option value="">–</option>}
        {windows.map((window) => (
          <option key={window}>{window}</option>
        ))}
      </select>
      <select aria-label="Comparison" data-testid="filter-op" value={condition.op} onChange={(event) => onChange(withOp(condition, event.target.value as DraftCondition["op"]))}>
        {OPS.map((op) => (
          <option key={op}>{op}</option>
        ))}
      </select>
      <select aria-label="Compare with" data-testid="filter-than" value={condition.than} disabled={condition.op === "between"} onChange={(event) => onChange({ ...condition, than: event.target.value as DraftCondition["than"] })}>
        <option value="number">a number</option>
        <option value="metric">another metric</option>
      </select>
      {condition.than === "metric" ? (
        <>
          <select aria-label="Other metric" data-testid="filter-other" value={condition.other} onChange={(event) => onChange(withOther(condition, event.target.value))}>
            {metricOptions}
          </select>
          {otherWindows.length > 0 && (
            <select aria-label="Other metric's window" data-testid="filter-other-window" value={condition.otherWindow ?? otherWindows[0]} onChange={(event) => onChange({ ...condition, otherWindow: event.target.value as Window })}>
              {otherWindows.map((window) => (
                <option key={window}>{window}</option>
              ))}
            </select>
          )}
          <span className="times">×</span>
          {number("Factor", "filter-factor", condition.factor, (factor) => onChange({ ...condition, factor }), "factor")}
          {condition.offset !== 0 && <span className="offset">{`${condition.offset > 0 ? "+" : "−"} ${Math.abs(condition.offset)}`}</span>}
        </>
      ) : (
        <>
          {number("Threshold", "filter-value", condition.value, (value) => onChange({ ...condition, value }), "value")}
          {condition.op === "between" && number("Upper bound", "filter-value2", condition.value2, (value2) => onChange({ ...condition, value2 }), "and")}
        </>
      )}
      {remove}
    </span>
  );
}

const replaced = <T,>(items: T[], index: number, item: T) => items.map((existing, at) => (at === index ? item : existing));
const without = <T,>(items: T[], index: number) => items.filter((_, at) => at !== index);

const positive = (value: string): number | null => (value.trim() === "" || !(Number(value) >= 0) ? null : Number(value));

/** Memoised: the board above it re-renders every second, the filter seldom changes. */
export const FilterBuilder = memo(function FilterBuilder({ filter, quotes, onChange, ref }: Props) {
  const [seen, setSeen] = useState(() => typedPart(filter));
  const [draft, setDraft] = useState(() => draftOf(filter));
  if (seen !== typedPart(filter)) {
    setSeen(typedPart(filter));
    setDraft(draftOf(filter));
  }

  const setGroup = (index: number, group: DraftCondition[]) =>
    setDraft({ ...draft, groups: group.length === 0 ? without(draft.groups, index) : replaced(draft.groups, index, group) });
  const incomplete = [...draft.conditions, ...draft.groups.flat()].some((condition) => fromDraft(condition) === null);

  const apply = (event: FormEvent) => {
    event.preventDefault();
    if (incomplete) return;
    const min = positive(draft.volumeMin);
    const max = positive(draft.volumeMax);
    const limit = Math.min(BOARD_LIMIT, Math.max(1, Math.round(Number(draft.limit) || BOARD_LIMIT)));
    onChange({
      ...filter,
      conditions: draft.conditions.flatMap((condition) => fromDraft(condition) ?? []),
      groups: draft.groups.map((group) => ({ any: group.flatMap((condition) => fromDraft(condition) ?? []) })),
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
        {draft.conditions.map((condition, index) => (
          <ConditionEditor key={index} condition={condition} onChange={(changed) => setDraft({ ...draft, conditions: replaced(draft.conditions, index, changed) })} onRemove={() => setDraft({ ...draft, conditions: without(draft.conditions, index) })} />
        ))}
        {draft.groups.map((group, index) => (
          <span className="filter-group" data-testid="filter-group" key={index}>
            <span className="group-label">Any of</span>
            {group.map((condition, at) => (
              <span className="group-member" key={at}>
                {at > 0 && <span className="or">or</span>}
                <ConditionEditor condition={condition} onChange={(changed) => setGroup(index, replaced(group, at, changed))} onRemove={() => setGroup(index, without(group, at))} />
              </span>
            ))}
            <button type="button" className="button" data-testid="filter-add-or" onClick={() => setGroup(index, [...group, newDraft()])}>
              + Or
            </button>
          </span>
        ))}
        <button type="button" className="button" data-testid="filter-add" onClick={() => setDraft({ ...draft, conditions: [...draft.conditions, newDraft()] })}>
          + Condition
        </button>
        <button type="button" className="button" data-testid="filter-add-group" title="Conditions of which any one may hold" onClick={() => setDraft({ ...draft, groups: [...draft.groups, [newDraft(), newDraft()]] })}>
          + Any of
        </button>
        <button type="submit" className="button primary" data-testid="filter-apply" disabled={incomplete} title={incomplete ? "Every condition needs its value" : "Apply (Enter)"}>
          Apply
        </button>
      </div>
    </form>
  );
});
