import { useEffect, useState } from "react";
import { ApiError, type DevSession, kiln } from "../api";
import { follow } from "../live";

interface HmrEvent {
  revision: number;
  kind: string;
  paths?: string[];
  latency_ms?: number;
}

interface DevError {
  revision?: number;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

/** A project's dev session: its live preview, the edits that reached the browser, errors. */
export function DevPanel({ project }: { project: string }) {
  const [session, setSession] = useState<DevSession | null>(null);
  const [missing, setMissing] = useState(false);
  const [hmr, setHmr] = useState<HmrEvent[]>([]);
  const [errors, setErrors] = useState<DevError[]>([]);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    let stopped = false;
    kiln
      .dev(project)
      .then((s) => !stopped && (setSession(s), setMissing(false)))
      .catch((e) => !stopped && e instanceof ApiError && e.status === 404 && setMissing(true));
    return () => {
      stopped = true;
    };
  }, [project, generation]);

  useEffect(() => {
    if (!session || session.status === "stopped") return;
    return follow(`/api/v1/projects/${encodeURIComponent(project)}/dev/events`, (event) => {
      if (event.event === "hmr") setHmr((h) => [event.data as HmrEvent, ...h].slice(0, 50));
      else if (event.event === "error") setErrors((e) => [event.data as DevError, ...e].slice(0, 20));
      else if (event.event === "status") {
        const s = event.data as { status: string; revision: number };
        setSession((cur) => (cur ? { ...cur, status: s.status, revision: s.revision } : cur));
        if (s.status === "ready") setErrors([]);
      } else if (event.event === "end") setSession((cur) => (cur ? { ...cur, status: "stopped" } : cur));
    });
  }, [project, session?.url]); // eslint-disable-line react-hooks/exhaustive-deps

  const act = (work: Promise<unknown>) => {
    setBusy(true);
    setProblem(null);
    work
      .catch((e: Error) => setProblem(e.message))
      .finally(() => {
        setBusy(false);
        setGeneration((g) => g + 1);
      });
  };

  if (missing || session?.status === "stopped")
    return (
      <div className="card dev">
        <h2>Dev session</h2>
        <p className="muted">No dev session is running for {project}.</p>
        <button className="button" disabled={busy} onClick={() => act(kiln.devStart(project, {}))}>
          Start a dev session
        </button>
        {problem && <p className="error-box">{problem}</p>}
      </div>
    );
  if (!session) return null;
  return (
    <div className="card dev" data-dev-status={session.status}>
      <header>
        <h2>Dev session</h2>
        <span className={`pill ${session.status === "ready" ? "succeeded" : session.status === "failed" ? "failed" : "running"}`}>
          {session.status} · revision {session.revision}
        </span>
        <a className="button" href={session.url} target="_blank" rel="noreferrer">
          Open
        </a>
        <button className="button danger" disabled={busy} onClick={() => act(kiln.devStop(project))}>
          Stop
        </button>
      </header>
      {problem && <p className="error-box">{problem}</p>}
      <div className="dev-body">
        <iframe title="dev preview" src={session.url} className="preview" />
        <aside>
          <h3>Edits that reached the browser</h3>
          {hmr.length === 0 && <p className="muted">None yet.</p>}
          <ul className="hmr">
            {hmr.map((h, i) => (
              <li key={i}>
                <span className="mono">r{h.revision}</span> {h.kind}{" "}
                <strong>{h.latency_ms !== undefined ? `${h.latency_ms} ms` : ""}</strong>
                <span className="muted"> {h.paths?.join(", ")}</span>
              </li>
            ))}
          </ul>
          <h3>Errors</h3>
          {errors.length === 0 && <p className="muted">None.</p>}
          <ul className="diagnostics">
            {errors.map((e, i) => (
              <li key={i}>
                {e.file && (
                  <span className="mono">
                    {e.file}
                    {e.line ? `:${e.line}` : ""}
                    {e.column ? `:${e.column}` : ""}
                  </span>
                )}{" "}
                {e.message}
              </li>
            ))}
          </ul>
        </aside>
      </div>
    </div>
  );
}
