import { type ReactNode, useEffect, useState } from "react";
import { NavLink } from "react-router-dom";
import { setToken, token, unauthorized } from "../api";

/** The frame of every page: navigation, and the token prompt when Kiln asks for one. */
export function Shell({ children }: { children: ReactNode }) {
  const [needToken, setNeedToken] = useState(false);
  const [draft, setDraft] = useState("");
  useEffect(() => {
    const ask = () => setNeedToken(true);
    unauthorized.addEventListener("unauthorized", ask);
    return () => unauthorized.removeEventListener("unauthorized", ask);
  }, []);
  return (
    <div className="shell">
      <header className="top">
        <NavLink to="/" className="brand">
          <span className="flame" /> Kiln
        </NavLink>
        <nav>
          <NavLink to="/" end>
            Projects
          </NavLink>
          <NavLink to="/ops">Operations</NavLink>
          <NavLink to="/new" className="button primary">
            New build
          </NavLink>
        </nav>
      </header>
      {needToken && (
        <form
          className="token"
          onSubmit={(e) => {
            e.preventDefault();
            setToken(draft.trim());
            window.location.reload();
          }}
        >
          <label>
            This Kiln needs its API token (KILN_API_TOKEN){token() ? "; the one saved was refused" : ""}:
            <input
              name="token"
              type="password"
              autoFocus
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
            />
          </label>
          <button className="button primary" type="submit">
            Use token
          </button>
        </form>
      )}
      <main>{children}</main>
    </div>
  );
}
