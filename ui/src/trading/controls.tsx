// The ticket's labelled controls: a choice among options, and a decimal field that says
// what is wrong with its value.
import { useId } from "react";

interface ChoiceProps<T extends string> {
  label: string;
  /** Read by screen readers only (the context shows what it is). */
  hideLabel?: boolean;
  className?: string;
  testid: string;
  value: T;
  options: readonly { value: T; label: string }[];
  onChange(value: T): void;
}

export function Choice<T extends string>({ label, hideLabel, className = "ticket-field", testid, value, options, onChange }: ChoiceProps<T>) {
  return (
    <label className={className}>
      {!hideLabel && <span>{label}</span>}
      <select aria-label={hideLabel ? label : undefined} data-testid={testid} value={value} onChange={(e) => onChange(e.target.value as T)}>
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
    </label>
  );
}

interface DecimalFieldProps {
  label: string;
  testid: string;
  value: string;
  onChange(value: string): void;
  /** Why the value cannot be sent (shown under it, and tied to it for screen readers). */
  error?: string;
  errorTestid?: string;
  /** A small button beside the label that fills or changes the field (e.g. "last"). */
  action?: { text: string; title: string; testid: string; onClick(): void };
}

export function DecimalField({ label, testid, value, onChange, error, errorTestid, action }: DecimalFieldProps) {
  const id = useId();
  return (
    <label className="ticket-field">
      <span>
        {label}
        {action && (
          <button type="button" className="link-button ticket-unit" data-testid={action.testid} onClick={action.onClick} title={action.title}>
            {action.text}
          </button>
        )}
      </span>
      <input
        className="number"
        data-testid={testid}
        inputMode="decimal"
        autoComplete="off"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
      />
      {error && (
        <span className="ticket-field-error" id={`${id}-error`} data-testid={errorTestid}>
          {error}
        </span>
      )}
    </label>
  );
}
