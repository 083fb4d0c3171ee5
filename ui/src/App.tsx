// The application shell: the session, the status line, and the page for the path.
import { AccountRoute } from "./account/routes";
import { BoardPage } from "./board/BoardPage";
import { followLink, useRoute } from "./router";
import { SessionProvider } from "./session/SessionProvider";
import { StatusBar } from "./status/StatusBar";
import { PaperPage } from "./trading/PaperPage";

/** Paths of the account area; every other path shows the board. */
const ACCOUNT_PATHS = new Set(["/login", "/signup", "/verify-email", "/reset-password", "/account", "/billing"]);

function Page() {
  const { path } = useRoute();
  if (path === "/paper") {
    return (
      <main className="page">
        <PaperPage />
      </main>
    );
  }
  if (ACCOUNT_PATHS.has(path)) {
    return (
      <main className="page">
        <AccountRoute path={path} />
      </main>
    );
  }
  return <BoardPage />;
}

export function App() {
  return (
    <SessionProvider>
      <div className="app">
        <header className="app-header">
          <a className="brand" href="/" onClick={followLink}>
            tickscan
          </a>
          <StatusBar />
        </header>
        <Page />
      </div>
    </SessionProvider>
  );
}
