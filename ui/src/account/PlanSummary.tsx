// What the caller's plan gives: its name, each feature in or out, the limits and the delay.
import type { Entitlements } from "../session/types";
import { FEATURE_LABELS, planName, useOffer } from "./plans";

export function PlanSummary({ entitlements }: { entitlements: Entitlements }) {
  const plans = useOffer();
  const { limits } = entitlements;
  return (
    <dl className="facts" data-testid="plan-summary">
      <dt>Plan</dt>
      <dd data-testid="plan-name">{planName(entitlements.plan, plans)}</dd>
      <dt>Features</dt>
      <dd>
        <ul className="feature-list">
          {Object.entries(FEATURE_LABELS).map(([feature, label]) => {
            const granted = entitlements.features.includes(feature);
            return (
              <li key={feature} className={granted ? "granted" : "missing"}>
                <span aria-hidden="true">{granted ? "✓" : "–"}</span> {label}
                <span className="sr-only">{granted ? " (included)" : " (not included)"}</span>
              </li>
            );
          })}
        </ul>
      </dd>
      <dt>Board</dt>
      <dd>{entitlements.delay_s > 0 ? `${entitlements.delay_s} s behind live` : "live"}</dd>
      <dt>Limits</dt>
      <dd>
        {limits.watchlists} watchlist{limits.watchlists === 1 ? "" : "s"} of up to {limits.watchlist_symbols} symbols,{" "}
        {limits.presets} saved filter preset{limits.presets === 1 ? "" : "s"}
      </dd>
    </dl>
  );
}
