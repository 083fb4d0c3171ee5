// One email field that asks the API to email a link (a new confirmation, a password reset).
import { useState } from "react";
import { api } from "../api/client";
import { EmailField, Form, Message, Submit, useAction } from "./form";

/** Email a new confirmation link to the address of an unconfirmed account; says so. */
export async function resendConfirmation(email: string): Promise<string> {
  const { status } = await api<{ status: string }>("/api/v1/auth/verify/resend", {
    method: "POST",
    body: { email },
  });
  return `${status}: a new confirmation link is on its way to ${email}`;
}

/**
 * The API answers the same whether the address has an account or not, so the
 * confirmation says "if" rather than claiming a mail was sent.
 */
export function EmailLinkForm({
  endpoint,
  testid,
  what,
  submitLabel,
  autoFocus,
}: {
  endpoint: string;
  /** Prefix of the test ids: `<testid>-email`, `-message`, `-submit`. */
  testid: string;
  /** What the mail brings, e.g. "a reset link". */
  what: string;
  submitLabel: string;
  autoFocus?: boolean;
}) {
  const [email, setEmail] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const request = useAction();
  const submit = () =>
    request.run(async () => {
      const { status } = await api<{ status: string }>(endpoint, { method: "POST", body: { email } });
      setNotice(`${status}: if ${email} has an account, ${what} is on its way`);
    });
  return (
    <Form onSubmit={submit} sending={request.sending}>
      <EmailField testid={`${testid}-email`} autoFocus={autoFocus} value={email} onValue={setEmail} />
      <Message testid={`${testid}-message`} error={request.failed?.message} notice={notice} />
      <Submit testid={`${testid}-submit`} sending={request.sending}>
        {submitLabel}
      </Submit>
    </Form>
  );
}
