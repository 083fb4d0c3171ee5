// /verify-email?token=: the page the confirmation email links to; it confirms on load.
import { useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import { useSession } from "../session/SessionProvider";
import { EmailLinkForm } from "./EmailLinkForm";
import { AppLink, AuthCard, failure, type Failure } from "./form";

type Outcome = { done: false } | { done: true; status: string } | { done: true; failed: Failure };

/** Ask for a new confirmation link. */
function ResendForm() {
  return (
    <EmailLinkForm
      endpoint="/api/v1/auth/verify/resend"
      testid="resend"
      what="a new confirmation link"
      submitLabel="Send a new link"
    />
  );
}

export function VerifyEmailPage({ token }: { token: string | null }) {
  const session = useSession();
  const [outcome, setOutcome] = useState<Outcome>({ done: false });
  // A token works once: StrictMode's second effect run must not send it again.
  const sent = useRef<string | null>(null);

  useEffect(() => {
    if (!token || sent.current === token) return;
    sent.current = token;
    api<{ status: string }>("/api/v1/auth/verify", { method: "POST", body: { token } }).then(
      ({ status }) => {
        setOutcome({ done: true, status });
        // A signed-in user's `email_verified` just changed.
        if (session.me) void session.signedIn();
      },
      (error: unknown) => setOutcome({ done: true, failed: failure(error) }),
    );
  }, [token, session]);

  if (!token) {
    return (
      <AuthCard title="Confirm your email">
        <p>Enter your address and we will send you a new confirmation link.</p>
        <ResendForm />
      </AuthCard>
    );
  }
  if (!outcome.done) {
    return (
      <AuthCard title="Confirm your email">
        <p role="status" data-testid="verify-status">
          Confirming your address…
        </p>
      </AuthCard>
    );
  }
  if ("status" in outcome) {
    return (
      <AuthCard title="Email confirmed">
        <p role="status" data-testid="verify-status">
          Your address is confirmed ({outcome.status}).
        </p>
        <p className="auth-links">
          {session.me ? <AppLink to="/">Go to the board</AppLink> : <AppLink to="/login">Log in</AppLink>}
        </p>
      </AuthCard>
    );
  }
  return (
    <AuthCard title="This link does not work">
      <p role="alert" data-testid="verify-status">
        {outcome.failed.message}
      </p>
      <p>Links work once and expire; ask for a new one:</p>
      <ResendForm />
    </AuthCard>
  );
}
