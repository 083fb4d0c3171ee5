// /signup: email and password; the account works once the emailed link is followed.
import { useState } from "react";
import { api } from "../api/client";
import { AppLink, AuthCard, EmailField, Form, Message, PASSWORD_HINT, PasswordField, Submit, useAction } from "./form";

export function SignupPage() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [sentTo, setSentTo] = useState<string | null>(null);
  const signup = useAction();

  const submit = () =>
    signup.run(async () => {
      await api("/api/v1/auth/signup", { method: "POST", body: { email, password } });
      setSentTo(email);
    });

  if (sentTo) {
    return (
      <AuthCard title="Check your email">
        <p data-testid="signup-sent" role="status">
          We sent a link to <strong>{sentTo}</strong>. Follow it to confirm your address, then log in.
        </p>
        <p className="auth-links">
          <AppLink to="/login">Log in</AppLink>
          <AppLink to="/verify-email">The link did not arrive?</AppLink>
        </p>
      </AuthCard>
    );
  }
  return (
    <AuthCard title="Create an account">
      <Form onSubmit={submit} sending={signup.sending}>
        <EmailField testid="signup-email" autoFocus value={email} onValue={setEmail} />
        <PasswordField
          testid="signup-password"
          autoComplete="new-password"
          hint={PASSWORD_HINT}
          value={password}
          onValue={setPassword}
        />
        <Message testid="signup-error" error={signup.failed?.message} />
        <Submit testid="signup-submit" sending={signup.sending}>
          Create account
        </Submit>
      </Form>
      <p className="auth-links">
        <span>
          Have an account? <AppLink to="/login">Log in</AppLink>
        </span>
      </p>
    </AuthCard>
  );
}
