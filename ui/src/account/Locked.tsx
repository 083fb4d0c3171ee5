// A feature outside the user's plan: shown, but locked, with the way to unlock it.
import type { ReactNode } from "react";
import { followLink } from "../router";
import { useSession } from "../session/SessionProvider";
import { featureLabel, planFor, useOffer } from "./plans";
import "./account.css";

function LockIcon() {
  return (
    <svg className="lock-icon" viewBox="0 0 12 12" width="10" height="10" aria-hidden="true">
      <path d="M3.5 5V3.5a2.5 2.5 0 0 1 5 0V5" fill="none" stroke="currentColor" strokeWidth="1.3" />
      <rect x="2" y="5" width="8" height="6" rx="1" fill="currentColor" />
    </svg>
  );
}

/**
 * Renders `children` as they are when the plan includes `feature`. Otherwise they stay
 * visible but inert (no focus, no clicks) under a badge naming the plan that unlocks the
 * feature and linking to /billing; without children the badge alone stands in for them.
 * While the plan is still loading the children are inert without a badge, so nothing
 * flashes "locked" at a paying user.
 */
export function Locked({ feature, children }: { feature: string; children?: ReactNode }) {
  const { entitlements, has } = useSession();
  const plans = useOffer();
  if (has(feature)) return <>{children}</>;
  if (!entitlements) return children ? <span className="locked" inert>{children}</span> : null;
  const plan = planFor(plans, feature);
  const badge = (
    <a
      className="locked-badge"
      href="/billing"
      onClick={followLink}
      title={`${featureLabel(feature)}: ${plan ? `in the ${plan.label} plan` : "not in your plan"}. Upgrade on the billing page.`}
    >
      <LockIcon /> {plan?.label ?? "Upgrade"}
    </a>
  );
  return (
    <span className="locked" data-testid={`locked-${feature}`} data-locked="true">
      {children && (
        <span className="locked-content" inert aria-disabled="true">
          {children}
        </span>
      )}
      {badge}
    </span>
  );
}
