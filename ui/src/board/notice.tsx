// One short message over the board (a refused action, a limit), gone after a few seconds.
import { useCallback, useEffect, useState } from "react";
import { ApiError } from "../api/client";
import { followLink } from "../router";

export interface Notice {
  text: string;
  /** Where the user can act on it: /login or /billing. */
  link?: { href: string; label: string };
}

const SHOW_MS = 6000;

export function useNotice(): [Notice | null, (notice: Notice | null) => void] {
  const [notice, setNotice] = useState<Notice | null>(null);
  useEffect(() => {
    if (!notice) return;
    const timer = window.setTimeout(() => setNotice(null), SHOW_MS);
    return () => window.clearTimeout(timer);
  }, [notice]);
  return [notice, useCallback((next: Notice | null) => setNotice(next), [])];
}

/** What an anonymous user hears when they reach for something kept per account. */
export const SIGN_IN_NOTICE: Notice = {
  text: "Log in to keep watchlists, presets and an ignore-list.",
  link: { href: "/login", label: "Log in" },
};

/** What to tell the user about a failed call, and where to go about it. */
export function noticeOf(error: unknown): Notice {
  if (!(error instanceof ApiError)) return { text: "The server could not be reached; try again." };
  if (error.status === 401) return SIGN_IN_NOTICE;
  if (error.code === "limit_reached" || error.code === "not_entitled") {
    return { text: error.message, link: { href: "/billing", label: "Upgrade" } };
  }
  return { text: error.message };
}

export function NoticeToast({ notice, onClose }: { notice: Notice | null; onClose(): void }) {
  if (!notice) return null;
  return (
    <div className="notice" role="status" data-testid="board-notice">
      <span>{notice.text}</span>
      {notice.link && (
        <a href={notice.link.href} onClick={followLink}>
          {notice.link.label}
        </a>
      )}
      <button type="button" className="icon-button" aria-label="Dismiss" onClick={onClose}>
        ×
      </button>
    </div>
  );
}
