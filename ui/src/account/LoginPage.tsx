// /login: email and password, the configured OIDC providers, and Sign-In with Ethereum.
import { useEffect, useState } from "react";
import { api } from "../api/client";
import { navigate } from "../router";
import { useSession } from "../session/SessionProvider";
import { AppLink, AuthCard, EmailField, Form, Message, PasswordField, Submit, useAction } from "./form";
import { resendConfirmation } from "./EmailLinkForm";
import { injectedWallet, signInWithWallet } from "./wallet";

interface Provider {
  name: string;
  label: string;
}

/** The OIDC providers to offer; none when the list cannot be had (password still works). */
function useProviders(): Provider[] {
  const [providers, setProviders] = useState<Provider[]>([]);
  useEffect(() => {
    const abort = new AbortController();
    api<Provider[]>("/api/v1/auth/oidc", { signal: abort.signal }).then(setProviders, () => undefined);
    return () => abort.abort();
  }, []);
  return providers;
}

export function LoginPage() {
  const session = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const login = useAction();
  const resend = useAction();
  const walletAction = useAction();
  const providers = useProviders();
  const wallet = injectedWallet();

  const enter = async () => {
    await session.signedIn();
    navigate("/");
  };

  const submit = () =>
    login.run(async () => {
      setNotice(null);
      await api("/api/v1/auth/login", { method: "POST", body: { email, password } });
      await enter();
    });

  const resendLink = () =>
    resend.run(async () => {
      const sent = await resendConfirmation(email);
      login.fail(null);
      setNotice(sent);
    });

  const unverified = login.failed?.code === "email_not_verified";
  return (
    <AuthCard title="Log in">
      <Form onSubmit={submit} sending={login.sending}>
        <EmailField testid="login-email" autoComplete="username" autoFocus value={email} onValue={setEmail} />
        <PasswordField testid="login-password" autoComplete="current-password" value={password} onValue={setPassword} />
        <Message testid="login-error" error={login.failed?.message ?? resend.failed?.message} notice={notice}>
          {unverified && (
            <button type="button" className="link-button" onClick={resendLink} disabled={resend.sending}>
              Resend the link
            </button>
          )}
        </Message>
        <Submit testid="login-submit" sending={login.sending}>
          Log in
        </Submit>
      </Form>
      <p className="auth-links">
        <AppLink to="/reset-password">Forgot your password?</AppLink>
        <AppLink to="/signup">Create an account</AppLink>
      </p>
      {(providers.length > 0 || wallet) && (
        <div className="auth-alternatives" aria-label="Other ways to log in" role="group">
          <div className="auth-divider">or</div>
          {providers.map((provider) => (
            <a
              key={provider.name}
              className="button"
              data-testid={`oidc-${provider.name}`}
              href={`/api/v1/auth/oidc/${encodeURIComponent(provider.name)}/login?next=/`}
            >
              Continue with {provider.label}
            </a>
          ))}
          {wallet && (
            <button
              type="button"
              className="button"
              data-testid="wallet-login"
              disabled={walletAction.sending}
              onClick={() =>
                walletAction.run(async () => {
                  await signInWithWallet(wallet);
                  await enter();
                })
              }
            >
              {walletAction.sending ? "Waiting for the wallet…" : "Sign in with wallet"}
            </button>
          )}
          <Message testid="wallet-error" error={walletAction.failed?.message} />
        </div>
      )}
    </AuthCard>
  );
}
