// /reset-password: without a token, ask for a reset link; with the emailed token, set a new
// password (which ends every session of the account).
import { useState } from "react";
import { api } from "../api/client";
import { useSession } from "../session/SessionProvider";
import { EmailLinkForm } from "./EmailLinkForm";
import { AppLink, AuthCard, Form, Message, PASSWORD_HINT, PasswordField, Submit, useAction } from "./form";

function ForgotForm() {
  return (
    <AuthCard title="Reset your password">
      <p>Enter the address of your account and we will email you a link to set a new password.</p>
      <EmailLinkForm
        endpoint="/api/v1/auth/password/forgot"
        testid="forgot"
        what="a reset link"
        submitLabel="Email me a link"
        autoFocus
      />
      <p className="auth-links">
        <AppLink to="/login">Back to log in</AppLink>
      </p>
    </AuthCard>
  );
}

function NewPasswordForm({ token }: { token: string }) {
  const session = useSession();
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [done, setDone] = useState<string | null>(null);
  const reset = useAction();

  const submit = () => {
    if (password !== again) {
      reset.fail({ code: "mismatch", message: "the two passwords differ" });
      return;
    }
    void reset.run(async () => {
      const { status } = await api<{ status: string }>("/api/v1/auth/password/reset", {
        method: "POST",
        body: { token, password },
      });
      setDone(status);
      // Every session of the account ended, perhaps this tab's: show it signed out.
      if (session.me) await session.signedIn();
    });
  };

  if (done) {
    return (
      <AuthCard title="Password changed">
        <p role="status" data-testid="reset-done">
          Your password is changed ({done}). Every session of the account has ended.
        </p>
        <p className="auth-links">
          <AppLink to="/login">Log in</AppLink>
        </p>
      </AuthCard>
    );
  }
  return (
    <AuthCard title="Choose a new password">
      <Form onSubmit={submit} sending={reset.sending}>
        <PasswordField
          label="New password"
          testid="reset-password"
          autoComplete="new-password"
          autoFocus
          hint={PASSWORD_HINT}
          value={password}
          onValue={setPassword}
        />
        <PasswordField
          label="New password again"
          testid="reset-password-again"
          autoComplete="new-password"
          value={again}
          onValue={setAgain}
        />
        <Message testid="reset-error" error={reset.failed?.message}>
          {reset.failed?.code === "invalid_link" && (
            <>
              {" "}
              <AppLink to="/reset-password">Ask for a new link</AppLink>
            </>
          )}
        </Message>
        <Submit testid="reset-submit" sending={reset.sending}>
          Set password
        </Submit>
      </Form>
    </AuthCard>
  );
}

export function ResetPasswordPage({ token }: { token: string | null }) {
  return token ? <NewPasswordForm token={token} /> : <ForgotForm />;
}
