// /account: who is signed in, how, on which plan; log out here or everywhere.
import { useState } from "react";
import { api } from "../api/client";
import { navigate } from "../router";
import { useSession } from "../session/SessionProvider";
import { resendConfirmation } from "./EmailLinkForm";
import { AppLink, AuthCard, Message, useAction } from "./form";
import { PlanSummary } from "./PlanSummary";

export function AccountPage() {
  const session = useSession();
  const { me, entitlements } = session;
  const action = useAction();
  const [notice, setNotice] = useState<string | null>(null);

  if (session.loading) {
    return (
      <AuthCard title="Account">
        <p role="status">Loading…</p>
      </AuthCard>
    );
  }
  if (!me) {
    return (
      <AuthCard title="Account">
        <p>You are not signed in.</p>
        <p className="auth-links">
          <AppLink to="/login">Log in</AppLink>
          <AppLink to="/signup">Create an account</AppLink>
        </p>
      </AuthCard>
    );
  }

  const resend = (email: string) =>
    action.run(async () => setNotice(await resendConfirmation(email)));
  const logOut = () =>
    action.run(async () => {
      await session.signOut();
      navigate("/");
    });
  const logOutEverywhere = () =>
    action.run(async () => {
      await api("/api/v1/auth/logout-all", { method: "POST" });
      // The cookies are cleared: reloading the session shows this tab signed out.
      await session.signedIn();
      navigate("/");
    });

  return (
    <AuthCard title="Account">
      <dl className="facts" data-testid="account-facts">
        <dt>Email</dt>
        <dd data-testid="account-email">
          {me.email ?? "none"}
          {me.email && me.email_verified && <span className="tag ok">verified</span>}
          {me.email && !me.email_verified && (
            <>
              <span className="tag warn">not verified</span>
              <button type="button" className="link-button" onClick={() => resend(me.email!)} disabled={action.sending}>
                Send a new confirmation link
              </button>
            </>
          )}
        </dd>
        <dt>Wallet</dt>
        <dd className="mono">{me.wallet_address ?? "none"}</dd>
        <dt>Member since</dt>
        <dd>{new Date(me.created_at).toLocaleDateString()}</dd>
      </dl>
      {entitlements && <PlanSummary entitlements={entitlements} />}
      <p className="auth-links">
        <AppLink to="/billing">Plans and billing</AppLink>
        <AppLink to="/">Back to the board</AppLink>
      </p>
      <div className="button-row">
        <button type="button" className="button" data-testid="account-logout" onClick={logOut} disabled={action.sending}>
          Log out
        </button>
        <button type="button" className="button danger" data-testid="logout-all" onClick={logOutEverywhere} disabled={action.sending}>
          Log out everywhere
        </button>
      </div>
      <Message testid="account-error" error={action.failed?.message} notice={notice} />
    </AuthCard>
  );
}
