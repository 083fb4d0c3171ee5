// /billing: the plans on offer, the user's subscription, Stripe Checkout and the portal.
// Checkout and the portal send the browser back here (`?checkout=success|cancel`).
import { useCallback, useEffect, useState } from "react";
import { api } from "../api/client";
import { useSession } from "../session/SessionProvider";
import { AppLink, AuthCard, failure, Message, useAction, type Failure } from "./form";
import { PlanSummary } from "./PlanSummary";
import { featureLabel, loadOffer, type Offer } from "./plans";

/** GET /api/v1/billing/subscription (all null: never subscribed). */
interface Subscription {
  plan: string | null;
  label: string | null;
  status: string | null;
  current_period_end: string | null;
  cancel_at_period_end: boolean;
}

/** Stripe statuses under which the user holds a subscription to manage, not to start. */
const HELD = new Set(["active", "trialing", "past_due", "unpaid", "incomplete", "paused"]);
/** After Checkout, Stripe's webhook may land a little later than the browser: ask again. */
const CONFIRM_EVERY_MS = 2_000;
const CONFIRM_FOR_MS = 60_000;

type Loaded<T> = { state: "loading" } | { state: "ok"; value: T } | { state: "failed"; failed: Failure };

function useOfferState(): Loaded<Offer> {
  const [offer, setOffer] = useState<Loaded<Offer>>({ state: "loading" });
  useEffect(() => {
    loadOffer().then(
      (value) => setOffer({ state: "ok", value }),
      (error: unknown) => setOffer({ state: "failed", failed: failure(error) }),
    );
  }, []);
  return offer;
}

/** The subscription, re-read while `confirming` until Stripe reports it held. */
function useSubscription(enabled: boolean, confirming: boolean, onHeld: () => void) {
  const [subscription, setSubscription] = useState<Subscription | null>(null);
  const read = useCallback(
    () =>
      api<Subscription>("/api/v1/billing/subscription").then((value) => {
        setSubscription(value);
        return value.status !== null && HELD.has(value.status);
      }),
    [],
  );
  useEffect(() => {
    if (!enabled) return;
    void read().catch(() => undefined);
    if (!confirming) return;
    const started = Date.now();
    const timer = window.setInterval(() => {
      if (Date.now() - started > CONFIRM_FOR_MS) window.clearInterval(timer);
      else
        read().then(
          (held) => {
            if (!held) return;
            window.clearInterval(timer);
            onHeld();
          },
          () => undefined,
        );
    }, CONFIRM_EVERY_MS);
    return () => window.clearInterval(timer);
  }, [enabled, confirming, read, onHeld]);
  return subscription;
}

function SubscriptionFacts({ subscription }: { subscription: Subscription }) {
  const end = subscription.current_period_end ? new Date(subscription.current_period_end).toLocaleDateString() : null;
  return (
    <dl className="facts" data-testid="subscription">
      <dt>Subscription</dt>
      <dd>
        {subscription.label ?? subscription.plan ?? "a plan no longer on offer"} <span className="tag">{subscription.status}</span>
      </dd>
      {end && (
        <>
          <dt>{subscription.cancel_at_period_end ? "Ends" : "Renews"}</dt>
          <dd>{end}</dd>
        </>
      )}
    </dl>
  );
}

export function BillingPage({ checkout }: { checkout: string | null }) {
  const session = useSession();
  const { me, entitlements } = session;
  const offer = useOfferState();
  const billingOn = offer.state === "ok" && offer.value !== null;
  const { signedIn } = session;
  const subscription = useSubscription(billingOn && me !== null, checkout === "success", signedIn);
  const redirect = useAction();
  const held = subscription?.status != null && HELD.has(subscription.status);

  const go = (path: string, body?: unknown) =>
    redirect.run(async () => {
      const { url } = await api<{ url: string }>(path, { method: "POST", body });
      window.location.assign(url);
    });

  let plans;
  if (offer.state === "loading") plans = <p role="status">Loading plans…</p>;
  else if (offer.state === "failed") plans = <p role="alert">Could not load the plans: {offer.failed.message}</p>;
  else if (offer.value === null) {
    plans = (
      <p data-testid="billing-disabled" role="status">
        Billing is not enabled on this server: every feature is available.
      </p>
    );
  } else {
    plans = (
      <div className="plans">
        {offer.value.map((plan) => {
          const current = entitlements?.plan === plan.id;
          return (
            <article key={plan.id} className={current ? "plan current" : "plan"} data-testid={`plan-${plan.id}`}>
              <h2>{plan.label}</h2>
              <ul className="feature-list">
                {plan.features.map((feature) => (
                  <li key={feature} className="granted">
                    <span aria-hidden="true">✓</span> {featureLabel(feature)}
                  </li>
                ))}
              </ul>
              {current ? (
                <span className="tag ok">your plan</span>
              ) : !me ? (
                <AppLink to="/login">Log in to subscribe</AppLink>
              ) : held ? null : (
                <button
                  type="button"
                  className="primary"
                  data-testid={`subscribe-${plan.id}`}
                  disabled={redirect.sending}
                  onClick={() => go("/api/v1/billing/checkout", { plan: plan.id })}
                >
                  Subscribe
                </button>
              )}
            </article>
          );
        })}
      </div>
    );
  }

  return (
    <AuthCard title="Plans and billing" wide>
      {checkout === "success" && (
        <p className="banner ok" role="status">
          {held ? "Thank you: your subscription is active." : "Payment received: your plan changes as soon as Stripe confirms it."}
        </p>
      )}
      {checkout === "cancel" && (
        <p className="banner" role="status">
          Checkout was cancelled: nothing was charged.
        </p>
      )}
      {entitlements && <PlanSummary entitlements={entitlements} />}
      {subscription?.status && <SubscriptionFacts subscription={subscription} />}
      <section data-testid="billing-plans" aria-label="Plans on offer">
        {plans}
      </section>
      {billingOn && me && subscription?.status && (
        <div className="button-row">
          <button
            type="button"
            className="button"
            data-testid="billing-portal"
            disabled={redirect.sending}
            onClick={() => go("/api/v1/billing/portal")}
          >
            Manage billing
          </button>
        </div>
      )}
      <Message testid="billing-error" error={redirect.failed?.message} />
      <p className="auth-links">
        <AppLink to="/">Back to the board</AppLink>
      </p>
    </AuthCard>
  );
}
