// The user's lists on the toolbar: which watchlist the board shows, making, renaming and
// deleting watchlists, and the ignore-list, where symbols can be taken off it again.
import { memo, useRef, useState, type FormEvent } from "react";
import type { Session } from "../session/SessionProvider";
import type { Watchlist } from "../session/types";
import { createWatchlist, deleteWatchlist, renameWatchlist, unignore } from "./lists";
import { noticeOf, SIGN_IN_NOTICE, type Notice } from "./notice";

interface Props {
  session: Session;
  /** The watchlist the board shows (null: all symbols). */
  shown: Watchlist | null;
  onShow(id: number | null): void;
  notify(notice: Notice): void;
}

/** Memoised: the board beside it re-renders every second, the lists seldom change. */
export const Lists = memo(function Lists({ session, shown, onShow, notify }: Props) {
  const state = session.state;
  const [newName, setNewName] = useState("");
  const [rename, setRename] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const menu = useRef<HTMLDetailsElement>(null);
  // Done with the menu once the board shows another list.
  const closeMenu = () => menu.current?.removeAttribute("open");

  const run = async (change: () => Promise<void>) => {
    if (!session.me) return notify(SIGN_IN_NOTICE);
    try {
      await change();
    } catch (error) {
      notify(noticeOf(error));
    }
  };
  const create = (event: FormEvent) => {
    event.preventDefault();
    const name = newName.trim();
    if (name)
      void run(async () => {
        const list = await createWatchlist(session, name);
        setNewName("");
        onShow(list.id);
        closeMenu();
      });
  };
  const saveName = (event: FormEvent) => {
    event.preventDefault();
    const name = rename?.trim();
    if (shown && name)
      void run(async () => {
        await renameWatchlist(session, shown, name);
        setRename(null);
      });
  };
  const remove = () => {
    if (!shown) return;
    if (!confirming) return setConfirming(true);
    setConfirming(false);
    void run(async () => {
      await deleteWatchlist(session, shown);
      onShow(null);
      closeMenu();
    });
  };

  const ignored = state?.ignored ?? [];
  return (
    <>
      <select
        aria-label="Watchlist"
        data-testid="watchlist-select"
        value={shown?.id ?? ""}
        disabled={!state}
        title={state ? "Show one watchlist" : "Log in to keep watchlists"}
        onChange={(event) => {
          setConfirming(false);
          setRename(null);
          onShow(event.target.value ? Number(event.target.value) : null);
        }}
      >
        <option value="">All symbols</option>
        {state?.watchlists.map((list) => (
          <option key={list.id} value={list.id}>
            ★ {list.name} ({list.symbols.length})
          </option>
        ))}
      </select>
      <details ref={menu} className="menu" data-testid="lists" onToggle={() => setConfirming(false)}>
        <summary className="button" data-testid="lists-menu" title={state ? "Watchlists and the ignore-list" : "Log in to keep watchlists"}>
          Lists
        </summary>
        <div className="menu-panel lists-panel" role="group" aria-label="Lists">
          <form className="lists-line" onSubmit={create}>
            <input aria-label="New watchlist name" data-testid="watchlist-new-name" placeholder="New watchlist" maxLength={64} value={newName} onChange={(event) => setNewName(event.target.value)} />
            <button type="submit" className="button" data-testid="watchlist-create" disabled={!newName.trim()}>
              Create
            </button>
          </form>
          {shown && (
            <form className="lists-line" onSubmit={saveName}>
              <input aria-label="Watchlist name" data-testid="watchlist-name" maxLength={64} value={rename ?? shown.name} onChange={(event) => setRename(event.target.value)} />
              <button type="submit" className="button" data-testid="watchlist-rename" disabled={rename === null || !rename.trim() || rename.trim() === shown.name}>
                Rename
              </button>
              <button type="button" className={`button${confirming ? " danger" : ""}`} data-testid="watchlist-delete" onClick={remove}>
                {confirming ? `Delete “${shown.name}”?` : "Delete"}
              </button>
            </form>
          )}
          <div className="lists-ignored" data-testid="ignored-list">
            <span className="group-label">Ignored ({ignored.length})</span>
            {ignored.length === 0 && <span className="lists-empty">No symbol is ignored: ⊘ on a row ignores it.</span>}
            {ignored.map((entry) => (
              <span key={entry} className="lists-entry" data-testid="ignored-entry" data-entry={entry}>
                {entry}
                <button type="button" className="icon-button" aria-label={`Stop ignoring ${entry}`} title="Stop ignoring" data-testid="unignore" onClick={() => void run(() => unignore(session, entry))}>
                  ×
                </button>
              </span>
            ))}
          </div>
        </div>
      </details>
    </>
  );
});
