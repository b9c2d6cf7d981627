import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { ago, formatMs, kiln, type ProjectRow } from "../api";
import { Sparkline } from "../components/Sparkline";
import { StatusPill } from "../components/StatusPill";

const REFRESH_MS = 10_000;

/** Every project: its latest build, its latest preview, its dev session, recent build times. */
export function ProjectsPage() {
  const [rows, setRows] = useState<ProjectRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    const load = () =>
      kiln
        .projects()
        .then((r) => !stopped && (setRows(r.items), setError(null)))
        .catch((e: Error) => !stopped && setError(e.message));
    void load();
    // The overview refreshes gently; a project's own page follows its live feed.
    const timer = window.setInterval(load, REFRESH_MS);
    window.addEventListener("focus", load);
    return () => {
      stopped = true;
      window.clearInterval(timer);
      window.removeEventListener("focus", load);
    };
  }, []);
  if (error) return <p className="error-box">{error}</p>;
  if (!rows) return <p className="empty">Loading projects…</p>;
  if (rows.length === 0)
    return (
      <div className="empty">
        <p>No builds yet.</p>
        <Link to="/new" className="button primary">
          Build a template
        </Link>
      </div>
    );
  return (
    <section>
      <h1>Projects</h1>
      <div className="cards">
        {rows.map((row) => {
          const recent = [...row.recent].reverse();
          return (
            <article className="card project" key={row.project} data-project={row.project}>
              <header>
                <Link to={`/projects/${row.project}`} className="title">
                  {row.project}
                </Link>
                {row.latest && <StatusPill status={row.latest.status} phase={row.latest.phase} />}
              </header>
              <dl>
                <dt>Latest build</dt>
                <dd>
                  {row.latest ? (
                    <Link to={`/builds/${row.latest.id}`} className="mono">
                      {row.latest.id}
                    </Link>
                  ) : (
                    "—"
                  )}{" "}
                  <span className="muted">{ago(row.latest?.created_at)}</span>
                </dd>
                <dt>Preview</dt>
                <dd>
                  {row.latest_succeeded ? (
                    <a href={row.latest_url} target="_blank" rel="noreferrer">
                      latest--{row.project}
                    </a>
                  ) : (
                    <span className="muted">no successful build yet</span>
                  )}
                </dd>
                <dt>Dev session</dt>
                <dd>
                  {row.dev ? (
                    <a href={row.dev.url} target="_blank" rel="noreferrer">
                      {row.dev.status}
                    </a>
                  ) : (
                    <span className="muted">none</span>
                  )}
                </dd>
              </dl>
              <footer>
                <Sparkline values={recent.map((b) => b.duration_ms)} failed={recent.map((b) => b.status === "failed")} />
                <span className="muted">last {formatMs(row.latest?.duration_ms)}</span>
              </footer>
            </article>
          );
        })}
      </div>
    </section>
  );
}
