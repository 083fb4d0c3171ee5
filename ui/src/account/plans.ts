// The plans on offer (fetched once per page load) and the words for what they unlock.
import { useEffect, useState } from "react";
import { api } from "../api/client";

/** GET /api/v1/billing/plans. */
export interface Plan {
  id: string;
  label: string;
  features: string[];
}

/** GET /api/v1/billing/plans: the plans, or `billing: false` (self-hosted: no plans). */
interface OfferBody {
  billing: boolean;
  plans: Plan[];
}

/** `null`: billing is off on this server, so every feature is available to everybody. */
export type Offer = Plan[] | null;

/** What each entitlement the API names gives the user. */
export const FEATURE_LABELS: Record<string, string> = {
  live_board: "Live board, no delay",
  candles_1s: "1-second candles",
  signals: "Signals",
};

export function featureLabel(feature: string): string {
  return FEATURE_LABELS[feature] ?? feature;
}

let offer: Promise<Offer> | null = null;

/** The plans, asked for once; a failure is not kept, so the next caller asks again. */
export function loadOffer(): Promise<Offer> {
  offer ??= api<OfferBody>("/api/v1/billing/plans").then(
    (body) => (body.billing ? body.plans : null),
    (error: unknown) => {
      offer = null;
      throw error;
    },
  );
  return offer;
}

/** The offer once loaded (undefined until then, or when it could not be loaded). */
export function useOffer(): Offer | undefined {
  const [value, setValue] = useState<Offer | undefined>(undefined);
  useEffect(() => {
    let live = true;
    loadOffer().then(
      (plans) => live && setValue(plans),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, []);
  return value;
}

/** The first plan on offer that unlocks `feature`. */
export function planFor(plans: Offer | undefined, feature: string): Plan | undefined {
  return plans?.find((plan) => plan.features.includes(feature));
}

/** How to name the plan `GET /api/v1/me/entitlements` reports. */
export function planName(plan: string, plans: Offer | undefined): string {
  if (plan === "self_hosted") return "Self-hosted: every feature";
  if (plan === "free") return "Free";
  return plans?.find((offered) => offered.id === plan)?.label ?? plan;
}
