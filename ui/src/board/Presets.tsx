// Saved filter presets: pick one to apply it, save the current filter, delete the picked one.
import { memo, useState, type FormEvent } from "react";
import { api } from "../api/client";
import { useSession } from "../session/SessionProvider";
import type { Preset, ScanFilter } from "../session/types";
import { describeCondition } from "./conditions";
import { noticeOf, SIGN_IN_NOTICE, type Notice } from "./notice";

interface Props {
  filter: ScanFilter;
  /** The preset the board shows, while its filter is unchanged. */
  current: number | null;
  onApply(preset: Preset): void;
  notify(notice: Notice): void;
}

/** A name that says what the filter does: "Change % 5m >= 3, USDT", or "by price asc". */
function suggestName(filter: ScanFilter): string {
  const parts = (filter.conditions ?? []).map(describeCondition);
  parts.push(...(filter.groups ?? []).map((group) => `(${group.any.map(describeCondition).join(" or ")})`));
  parts.push(...(filter.quotes ?? []), ...(filter.markets ?? []));
  if (parts.length === 0) parts.push(`by ${filter.sort ?? "default sort"} ${filter.order ?? ""}`.trim());
  return parts.join(", ").slice(0, 64);
}

/** Memoised: the board above it re-renders every second, the filter seldom changes. */
export const Presets = memo(function Presets({ filter, current, onApply, notify }: Props) {
  const session = useSession();
  const presets = session.state?.presets ?? [];
  const [name, setName] = useState<string | null>(null);

  const save = async (event?: FormEvent) => {
    event?.preventDefault();
    if (!session.me) {
      notify(SIGN_IN_NOTICE);
      return;
    }
    if (name === null) {
      setName(suggestName(filter));
      return;
    }
    const trimmed = name.trim();
    if (!trimmed) return;
    try {
      const preset = await api<Preset>("/api/v1/me/presets", { method: "POST", body: { name: trimmed, filter } });
      session.apply({ kind: "preset", preset });
      setName(null);
      onApply(preset);
    } catch (error) {
      notify(noticeOf(error));
    }
  };

  const remove = async () => {
    if (current === null) return;
    try {
      await api(`/api/v1/me/presets/${current}`, { method: "DELETE" });
      session.apply({ kind: "preset", deleted: current });
    } catch (error) {
      notify(noticeOf(error));
    }
  };

  const picked = presets.some((preset) => preset.id === current) ? String(current) : "";
  return (
    <form className="presets" onSubmit={save}>
      <select
        aria-label="Preset"
        data-testid="preset-select"
        value={picked}
        onChange={(event) => {
          const preset = presets.find((item) => String(item.id) === event.target.value);
          if (preset) onApply(preset);
        }}
      >
        <option value="">{presets.length ? "Presets…" : "No presets"}</option>
        {presets.map((preset) => (
          <option key={preset.id} value={preset.id}>
            {preset.name}
          </option>
        ))}
      </select>
      {name !== null && (
        <input
          className="preset-name"
          aria-label="Preset name"
          data-testid="preset-name"
          maxLength={64}
          autoFocus
          value={name}
          onChange={(event) => setName(event.target.value)}
          onKeyDown={(event) => event.key === "Escape" && setName(null)}
        />
      )}
      <button type="submit" className="button" data-testid="preset-save" title={name === null ? "Save the filter as a preset" : "Save (Enter)"}>
        {name === null ? "Save preset" : "Save"}
      </button>
      {picked && (
        <button type="button" className="icon-button" aria-label="Delete preset" title="Delete this preset" data-testid="preset-delete" onClick={remove}>
          ×
        </button>
      )}
    </form>
  );
});
