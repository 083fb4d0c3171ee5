// Which metric columns the board shows, in the board's order.
import { memo } from "react";
import { COLUMNS, DEFAULT_COLUMNS } from "./columns";

/** Memoised: the board above it re-renders every second, the columns seldom change. */
export const ColumnPicker = memo(function ColumnPicker({ columns, onChange }: { columns: string[]; onChange(columns: string[]): void }) {
  const shown = new Set(columns);
  const toggle = (field: string) =>
    onChange(COLUMNS.map((column) => column.field).filter((name) => (name === field ? !shown.has(name) : shown.has(name))));
  return (
    <details className="menu">
      <summary className="button" data-testid="columns-menu">
        Columns
      </summary>
      <div className="menu-panel" role="group" aria-label="Columns">
        {COLUMNS.map((column) => (
          <label key={column.field} title={column.title}>
            <input type="checkbox" checked={shown.has(column.field)} data-testid={`column-${column.field}`} onChange={() => toggle(column.field)} />
            {column.label}
          </label>
        ))}
        <button type="button" className="button" onClick={() => onChange(DEFAULT_COLUMNS)}>
          Default columns
        </button>
      </div>
    </details>
  );
});
