// The account area's pages by path; the shell renders the board for any other path.
import { useRoute } from "../router";
import { AccountPage } from "./AccountPage";
import { BillingPage } from "./BillingPage";
import { LoginPage } from "./LoginPage";
import { ResetPasswordPage } from "./ResetPasswordPage";
import { SignupPage } from "./SignupPage";
import { VerifyEmailPage } from "./VerifyEmailPage";

/** The page for `path`, or null when it is not an account page. */
export function AccountRoute({ path }: { path: string }) {
  const { query } = useRoute();
  switch (path) {
    case "/login":
      return <LoginPage />;
    case "/signup":
      return <SignupPage />;
    case "/verify-email":
      return <VerifyEmailPage token={query.get("token")} />;
    case "/reset-password":
      return <ResetPasswordPage token={query.get("token")} />;
    case "/account":
      return <AccountPage />;
    case "/billing":
      return <BillingPage checkout={query.get("checkout")} />;
    default:
      return null;
  }
}
