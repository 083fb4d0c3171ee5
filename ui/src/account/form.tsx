// What every account page shares: the card layout, labelled fields, a reserved message line,
// and an action that disables its form while it runs and keeps the API's error.
import { useCallback, useEffect, useId, useRef, useState, type FormEvent, type InputHTMLAttributes, type ReactNode } from "react";
import { ApiError } from "../api/client";
import { followLink } from "../router";
import "./account.css";

/** Why something failed, in the API's words when the API said it. */
export interface Failure {
  code: string;
  message: string;
}

export function failure(error: unknown): Failure {
  if (error instanceof ApiError) return { code: error.code, message: error.message };
  // fetch rejects with a TypeError when the server cannot be reached at all.
  if (error instanceof TypeError) return { code: "network", message: "cannot reach the server: try again" };
  // Wallets reject with plain objects carrying a message (EIP-1193 ProviderRpcError).
  const message = (error as { message?: unknown } | null)?.message;
  return { code: "error", message: typeof message === "string" ? message : String(error) };
}

export interface Action {
  sending: boolean;
  failed: Failure | null;
  /** Run `work`, unless one is running; a failure is kept in `failed`. */
  run(work: () => Promise<void>): Promise<void>;
  fail(failed: Failure | null): void;
}

export function useAction(): Action {
  const [sending, setSending] = useState(false);
  const [failed, setFailed] = useState<Failure | null>(null);
  const run = useCallback(async (work: () => Promise<void>) => {
    setSending(true);
    setFailed(null);
    try {
      await work();
    } catch (error) {
      setFailed(failure(error));
    } finally {
      setSending(false);
    }
  }, []);
  return { sending, failed, run, fail: setFailed };
}

/** A page of the account area: a centred card with a heading. */
export function AuthCard({ title, wide, children }: { title: string; wide?: boolean; children: ReactNode }) {
  const id = useId();
  return (
    <div className="auth-page">
      <section className={wide ? "auth-card wide" : "auth-card"} aria-labelledby={id}>
        <h1 id={id}>{title}</h1>
        {children}
      </section>
    </div>
  );
}

/**
 * A form whose fields are all disabled while it sends; Enter in any field submits it.
 * Disabling drops the focus, so it goes back where it was once the answer is in.
 */
export function Form({ onSubmit, sending, children }: { onSubmit(): void; sending: boolean; children: ReactNode }) {
  const focused = useRef<HTMLElement | null>(null);
  useEffect(() => {
    if (sending || !focused.current) return;
    if (document.activeElement === document.body) focused.current.focus();
    focused.current = null;
  }, [sending]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (sending) return;
    focused.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    onSubmit();
  };
  return (
    <form className="auth-form" onSubmit={submit} aria-busy={sending} noValidate>
      <fieldset disabled={sending}>{children}</fieldset>
    </form>
  );
}

/** The server's password rule (api/accounts/passwords.py), which it checks again. */
export const PASSWORD_HINT = "10 to 256 characters, not your email address";

type FieldProps = {
  label: string;
  testid: string;
  hint?: string;
  value: string;
  onValue(value: string): void;
} & Omit<InputHTMLAttributes<HTMLInputElement>, "value" | "onChange">;

export function Field({ label, testid, hint, value, onValue, ...input }: FieldProps) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        data-testid={testid}
        aria-describedby={hint ? `${id}-hint` : undefined}
        value={value}
        onChange={(event) => onValue(event.target.value)}
        {...input}
      />
      {hint && (
        <small id={`${id}-hint`} className="field-hint">
          {hint}
        </small>
      )}
    </div>
  );
}

export function EmailField(props: Omit<FieldProps, "label" | "type">) {
  return <Field label="Email" type="email" autoComplete="email" required {...props} />;
}

/** A password field; `autoComplete` tells a password manager whether to fill or to save. */
export function PasswordField({ label = "Password", ...props }: Omit<FieldProps, "label" | "type"> & { label?: string }) {
  return <Field label={label} type="password" required {...props} />;
}

/**
 * The line under a form: an error or a confirmation. Its height is reserved even when
 * empty, so a message appearing never moves the page.
 */
export function Message({
  testid,
  error,
  notice,
  children,
}: {
  testid: string;
  error?: string | null;
  notice?: string | null;
  children?: ReactNode;
}) {
  return (
    <p className={error ? "form-message error" : "form-message"} role={error ? "alert" : "status"} data-testid={testid}>
      {error ?? notice}
      {children}
    </p>
  );
}

export function Submit({ testid, sending, children }: { testid: string; sending: boolean; children: ReactNode }) {
  return (
    <button type="submit" className="primary" data-testid={testid} disabled={sending}>
      {sending ? "Sending…" : children}
    </button>
  );
}

/** A link inside the app: no page load. */
export function AppLink({ to, children, testid }: { to: string; children: ReactNode; testid?: string }) {
  return (
    <a href={to} onClick={followLink} data-testid={testid}>
      {children}
    </a>
  );
}
