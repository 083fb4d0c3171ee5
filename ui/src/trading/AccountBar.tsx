// Which paper account trades: choose one of the user's accounts on this market, open a new
// one with a starting balance, or reset the chosen one to a balance.
import { useState, type FormEvent } from "react";
import { failure } from "../account/form";
import { followLink } from "../router";
import { useSession } from "../session/SessionProvider";
import { Choice } from "./controls";
import { compare, isDecimal } from "./decimal";
import type { Market } from "./api";
import { formatAmount } from "./format";
import type { Paper } from "./usePaper";

const DEFAULT_BALANCE = "10000";
// The board's own words for the markets (the Ⓢ of USDⓈ-M is missing from common fonts).
const MARKET_NAME: Record<Market, string> = { spot: "Spot", usdm: "Perp" };

type Mode = "idle" | "create" | "reset";

/**
 * The account chooser of `paper`; `market` is the market new accounts are opened on (null:
 * the form asks).
 */
export function AccountBar({ paper, market }: { paper: Paper; market: Market | null }) {
  const [mode, setMode] = useState<Mode>("idle");
  const [chosenMarket, setChosenMarket] = useState<Market>(market ?? "usdm");
  const on = market ?? chosenMarket;
  const [name, setName] = useState("");
  const [balance, setBalance] = useState(DEFAULT_BALANCE);
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const { accounts, account } = paper;
  const { me, loading } = useSession();

  const defaultName = `${MARKET_NAME[on]} ${(accounts?.length ?? 0) + 1}`;
  const open = (next: Mode) => {
    setMode(next);
    setError(null);
    setBalance(DEFAULT_BALANCE);
    setName("");
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!isDecimal(balance) || compare(balance, "0") <= 0) return setError("The starting balance must be a positive number of USDT.");
    setSending(true);
    setError(null);
    try {
      if (mode === "create" || accounts?.length === 0) await paper.create(name.trim() || defaultName, balance.trim(), on);
      else await paper.reset(balance.trim());
      setMode("idle");
    } catch (failed) {
      setError(failure(failed).message);
    } finally {
      setSending(false);
    }
  };

  if (!me && !loading) {
    return (
      <div className="paper-bar" data-testid="paper-signed-out">
        <a href="/login" onClick={followLink}>
          Log in
        </a>
        &nbsp;to paper trade.
      </div>
    );
  }
  if (accounts === null) return <div className="paper-bar">{paper.error ?? "Loading paper accounts…"}</div>;
  if (mode !== "idle" || accounts.length === 0) {
    const creating = mode === "create" || accounts.length === 0;
    return (
      <form className="paper-bar paper-bar-form" onSubmit={submit} data-testid={creating ? "paper-create" : "paper-reset"} aria-label={creating ? "New paper account" : "Reset the paper account"}>
        {creating && market === null && (
          <Choice<Market>
            label="Market"
            testid="paper-market"
            value={chosenMarket}
            options={[
              { value: "usdm", label: "Perp (USDT-margined)" },
              { value: "spot", label: MARKET_NAME.spot },
            ]}
            onChange={setChosenMarket}
          />
        )}
        {creating && (
          <label className="ticket-field">
            <span>New {MARKET_NAME[on]} paper account</span>
            <input data-testid="paper-name" value={name} onChange={(e) => setName(e.target.value)} data-letters placeholder={defaultName} maxLength={64} />
          </label>
        )}
        <label className="ticket-field">
          <span>{creating ? "Starting balance" : `Reset ${account?.name ?? ""} to`} (USDT)</span>
          <input data-testid="paper-balance" className="number" inputMode="decimal" value={balance} onChange={(e) => setBalance(e.target.value)} />
        </label>
        <div className="button-row">
          <button type="submit" className="button primary" data-testid={creating ? "paper-create-submit" : "paper-reset-submit"} disabled={sending}>
            {creating ? "Open account" : "Reset"}
          </button>
          {accounts.length > 0 && (
            <button type="button" className="button" onClick={() => setMode("idle")}>
              Cancel
            </button>
          )}
        </div>
        {error && (
          <p className="ticket-error" role="alert" data-testid="paper-error">
            {error}
          </p>
        )}
      </form>
    );
  }
  return (
    <div className="paper-bar">
      <Choice
        label="Paper account"
        hideLabel
        className="paper-account"
        testid="paper-account"
        value={account?.account_id ?? accounts[0]?.account_id}
        options={accounts.map((a) => ({ value: a.account_id, label: a.name }))}
        onChange={paper.select}
      />
      <span className="paper-equity" data-testid="paper-equity" title="Equity (USDT)">
        {account ? formatAmount(account.equity) : "–"}
      </span>
      <button type="button" className="icon-button" title="New paper account" aria-label="New paper account" data-testid="paper-new" onClick={() => open("create")}>
        +
      </button>
      <button type="button" className="icon-button" title="Reset this account" aria-label="Reset this account" data-testid="paper-reset-open" onClick={() => open("reset")} disabled={!account}>
        ↺
      </button>
      <a className="paper-link" href={account ? `/paper?account=${encodeURIComponent(account.account_id)}` : "/paper"} onClick={followLink} data-testid="paper-page-link">
        Account
      </a>
    </div>
  );
}
