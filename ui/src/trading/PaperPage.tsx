// /paper: the user's paper accounts: choose, open or reset one, its summary (equity,
// balances, P&L, fees, funding, margin), its equity curve, positions, orders and fills.
import { useEffect, type ReactNode } from "react";
import { AppLink } from "../account/form";
import { navigate, useRoute } from "../router";
import { useSession } from "../session/SessionProvider";
import { AccountBar } from "./AccountBar";
import { EquityChart } from "./EquityChart";
import { formatAmount, formatMarketTime, formatPnl, pnlTone } from "./format";
import { TradingTables } from "./TradingTables";
import { usePaper } from "./usePaper";
import "./trading.css";

function Fact({ label, children, testid, tone }: { label: string; children: ReactNode; testid?: string; tone?: string }) {
  return (
    <div className="paper-fact">
      <dt>{label}</dt>
      <dd className={tone} data-testid={testid}>
        {children}
      </dd>
    </div>
  );
}

export function PaperPage() {
  const session = useSession();
  const { query } = useRoute();
  const paper = usePaper(null);
  const wanted = query.get("account");
  const { account, select } = paper;

  // The account in the address is the one shown; choosing another puts it there.
  useEffect(() => {
    if (wanted) select(wanted);
  }, [wanted, select]);
  useEffect(() => {
    if (account && account.account_id !== wanted) navigate(`/paper?account=${encodeURIComponent(account.account_id)}`, { replace: true });
  }, [account, wanted]);

  if (!session.loading && !session.me) {
    return (
      <div className="paper-page">
        <h1>Paper trading</h1>
        <p>
          <AppLink to="/login">Log in</AppLink> to open a paper account.
        </p>
      </div>
    );
  }
  const usdm = account?.market === "usdm";
  return (
    <div className="paper-page" data-testid="paper-page">
      <header className="paper-page-head">
        <h1>Paper trading</h1>
        <AccountBar paper={paper} market={null} />
      </header>
      {account && (
        <>
          <dl className="paper-facts" data-testid="paper-summary">
            <Fact label="Account">
              {account.name} · {account.exchange} {account.market === "usdm" ? "Perp" : "Spot"}
            </Fact>
            <Fact label="Equity (USDT)" testid="paper-summary-equity">
              {formatAmount(account.equity)}
            </Fact>
            {account.balances.map((b) => (
              <Fact key={b.asset} label={`${b.asset} free / locked`}>
                {b.free} / {b.locked ?? "0"}
              </Fact>
            ))}
            {usdm && (
              <Fact label="Unrealised P&L" tone={pnlTone(account.unrealized_pnl)} testid="paper-summary-unrealized">
                {formatPnl(account.unrealized_pnl)}
              </Fact>
            )}
            <Fact label="Realised P&L" tone={pnlTone(account.realized_pnl)}>
              {formatPnl(account.realized_pnl)}
            </Fact>
            <Fact label="Fees paid">{formatAmount(account.fees ?? "0")}</Fact>
            {usdm && (
              <Fact label="Funding" tone={pnlTone(account.funding)}>
                {formatPnl(account.funding)}
              </Fact>
            )}
            {usdm && <Fact label="Margin balance">{formatAmount(account.margin_balance ?? "0")}</Fact>}
            {usdm && <Fact label="Maintenance margin">{formatAmount(account.maintenance_margin ?? "0")}</Fact>}
            {usdm && <Fact label="Available">{formatAmount(account.available ?? "0")}</Fact>}
            <Fact label="As of (market time, UTC)">{account.time_us ? formatMarketTime(account.time_us) : "–"}</Fact>
          </dl>
          <EquityChart account={account} />
          <div className="paper-page-tables">
            <TradingTables paper={paper} />
          </div>
        </>
      )}
      <p className="auth-links">
        <AppLink to="/">Back to the board</AppLink>
      </p>
    </div>
  );
}
