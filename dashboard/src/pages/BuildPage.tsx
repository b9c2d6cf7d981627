import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { type Build, formatMs, kiln } from "../api";
import { LogView, type LogLine } from "../components/LogView";
import { StatusPill } from "../components/StatusPill";
import { type Span, Timeline } from "../components/Timeline";
import { follow } from "../live";

/** The install scripts run in their own step inside the installing phase; Kiln announces
 * each step's command as `$ …`, and the scripts step's command is a `rebuild`. */
function sectionOf(phase: string, text: string, kilnLine: boolean, current: string | null): string {
  if (phase !== "installing") return phase;
  if (kilnLine && text.startsWith("$ ")) return /\brebuild\b/.test(text) ? "scripts" : "installing";
  return current && (current === "scripts" || current === "installing") ? current : phase;
}

/** Redis stream ids start with the milliseconds at which the event was written. */
function eventMs(id: string): number {
  return Number(id.split("-")[0]);
}

interface Mark {
  phase: string;
  at: number;
}

function spansOf(build: Build | null, marks: Mark[]): Span[] {
  if (!build) return [];
  const spans: Span[] = [];
  if (build.started_at) {
    spans.push({ phase: "queue", ms: Date.parse(build.started_at) - Date.parse(build.created_at) });
  }
  const end = build.finished_at ? Date.parse(build.finished_at) : Date.now();
  marks.forEach((mark, i) => {
    if (mark.phase === "done" || mark.phase === "queued") return;
    const next = i + 1 < marks.length ? marks[i + 1].at : end;
    const last = spans[spans.length - 1];
    if (last && last.phase === mark.phase) last.ms += Math.max(0, next - mark.at);
    else spans.push({ phase: mark.phase, ms: Math.max(0, next - mark.at) });
  });
  return spans;
}

/** One build: its log live by phase, where the time went, why it failed, its preview. */
export function BuildPage() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const [build, setBuild] = useState<Build | null>(null);
  const [marks, setMarks] = useState<Mark[]>([]);
  const [version, setVersion] = useState(0);
  const [rounds, setRounds] = useState<Record<string, unknown>[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const lines = useRef<LogLine[]>([]);

  useEffect(() => {
    lines.current = [];
    setMarks([]);
    setVersion(0);
    let pending = false;
    const repaint = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        setVersion((v) => v + 1);
      });
    };
    kiln.build(id).then(setBuild).catch((e: Error) => setProblem(e.message));
    const stop = follow(`/api/v1/builds/${id}/events`, (event) => {
      const data = event.data as Record<string, unknown>;
      if (event.event === "log") {
        const text = String(data.text ?? "");
        const kilnLine = data.source === "kiln";
        const previous = lines.current.length ? lines.current[lines.current.length - 1].phase : null;
        const section = sectionOf(String(data.phase ?? ""), text, kilnLine, previous);
        if (section !== previous && (section === "scripts" || previous === "scripts")) {
          setMarks((m) => [...m, { phase: section, at: eventMs(event.id) }]);
        }
        lines.current.push({ phase: section, stream: String(data.stream ?? "stdout"), text, kiln: kilnLine });
        repaint();
      } else if (event.event === "status") {
        const phase = String(data.phase);
        setMarks((m) => (m.length && m[m.length - 1].phase === phase ? m : [...m, { phase, at: eventMs(event.id) }]));
        setBuild((b) => (b ? { ...b, status: data.status as Build["status"], phase } : b));
      } else if (event.event === "end") {
        setBuild(event.data as Build);
      }
    });
    return stop;
  }, [id]);

  useEffect(() => {
    if (build?.generation) {
      kiln
        .generation(id)
        .then((g) => setRounds((g.rounds as Record<string, unknown>[]) ?? []))
        .catch(() => undefined);
    }
  }, [id, build?.generation, build?.status]);

  if (problem) return <p className="error-box">{problem}</p>;
  if (!build) return <p className="empty">Loading build {id}…</p>;
  const running = build.status === "queued" || build.status === "running";
  const items = build.error?.diagnostics?.items ?? [];
  const preview = build.preview_url ?? build.urls?.preview;
  return (
    <section className="build" data-build={build.id} data-status={build.status}>
      <h1>
        <Link to="/">Projects</Link> / <Link to={`/projects/${build.project}`}>{build.project}</Link> /{" "}
        <span className="mono">{build.id}</span>
      </h1>
      <div className="build-head">
        <StatusPill status={build.status} phase={build.phase} />
        <span>duration {formatMs(build.duration_ms)}</span>
        {build.queue?.position ? <span>queue position {build.queue.position}</span> : null}
        {build.reused_from && (
          <span>
            reused <Link to={`/builds/${build.reused_from}`}>{build.reused_from}</Link>
          </span>
        )}
        {build.environment && (
          <span>
            node {build.environment.node} · {build.environment.package_manager}
          </span>
        )}
        <span className="spacer" />
        {running && (
          <button className="button danger" onClick={() => kiln.cancel(build.id).catch((e: Error) => setProblem(e.message))}>
            Cancel
          </button>
        )}
        {!running && (
          <button
            className="button"
            onClick={() =>
              kiln
                .retry(build.id)
                .then((b) => navigate(`/builds/${b.id}`))
                .catch((e: Error) => setProblem(e.message))
            }
          >
            Retry
          </button>
        )}
      </div>
      {build.error && (
        <div className="diagnosis" data-code={build.error.code}>
          <h2>
            {build.error.code}: {build.error.message}
          </h2>
          {items.length > 0 && (
            <ul className="diagnostics">
              {items.map((item, i) => (
                <li key={i}>
                  {item.file && (
                    <span className="mono location">
                      {item.file}
                      {item.line ? `:${item.line}` : ""}
                      {item.column ? `:${item.column}` : ""}
                    </span>
                  )}{" "}
                  {item.category && <span className="tag">{item.category}</span>} {item.message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <Timeline spans={spansOf(build, marks)} />
      {rounds.length > 0 && (
        <div className="card">
          <h2>Generation</h2>
          {build.generation?.prompt && <p className="prompt">“{build.generation.prompt}”</p>}
          <table>
            <thead>
              <tr>
                <th>Round</th>
                <th>Kind</th>
                <th>Model</th>
                <th>Tokens</th>
                <th>Time</th>
                <th>Files changed</th>
                <th>Summary</th>
              </tr>
            </thead>
            <tbody>
              {rounds.map((r, i) => (
                <tr key={i}>
                  <td>{String(r.round)}</td>
                  <td>{String(r.kind)}</td>
                  <td>{String(r.model ?? "")}</td>
                  <td>
                    {String(r.prompt_tokens ?? 0)} + {String(r.completion_tokens ?? 0)}
                  </td>
                  <td>{r.seconds ? `${String(r.seconds)} s` : ""}</td>
                  <td className="mono">{((r.files as string[]) ?? []).join(", ")}</td>
                  <td>{String(r.error ?? r.summary ?? "")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div className="build-body">
        <div>
          <h2>Log</h2>
          <LogView lines={lines.current} version={version} follow={running} />
        </div>
        {preview && build.status === "succeeded" && (
          <div>
            <h2>
              Preview{" "}
              <a className="button" href={preview} target="_blank" rel="noreferrer">
                Open alone
              </a>
            </h2>
            <iframe title="preview" src={preview} className="preview" />
          </div>
        )}
      </div>
    </section>
  );
}
