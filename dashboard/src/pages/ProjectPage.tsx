import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { ago, type Build, formatMs, kiln } from "../api";
import { StatusPill } from "../components/StatusPill";
import { DevPanel } from "../components/DevPanel";
import { follow } from "../live";

function cacheLabel(build: Build): string {
  const cache = build.cache ?? {};
  if (build.reused_from || cache.reuse === "hit") return `reused ${build.reused_from ?? ""}`.trim();
  if (cache.layer) return `layer ${cache.layer}`;
  return "—";
}

function supersededBy(build: Build): string | null {
  if (build.error?.code !== "superseded") return null;
  const match = /build ([0-9a-f]+)/.exec(build.error.message);
  return match ? match[1] : null;
}

/** One project's builds, live: the project feed adds and updates rows as they happen. */
export function ProjectPage() {
  const { project = "" } = useParams();
  const [builds, setBuilds] = useState<Map<string, Build>>(new Map());
  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    let stopped = false;
    const upsert = (build: Partial<Build> & { id: string }) =>
      setBuilds((current) => {
        const next = new Map(current);
        next.set(build.id, { ...(current.get(build.id) ?? ({} as Build)), ...build });
        return next;
      });
    kiln.builds(project, 100).then((r) => {
      if (stopped) return;
      setBuilds((current) => {
        const next = new Map(current);
        for (const b of r.items) if (!next.has(b.id)) next.set(b.id, b);
        return next;
      });
      setLoaded(true);
    });
    const stop = follow(`/api/v1/projects/${encodeURIComponent(project)}/events`, (event) => {
      const data = event.data as Partial<Build> & { id: string };
      if (event.event === "build_end") upsert(data);
      else if (event.event === "build") {
        upsert(data);
        // A build we have not seen yet: fetch its whole body once.
        kiln.build(data.id).then((b) => !stopped && upsert(b)).catch(() => undefined);
      }
    });
    return () => {
      stopped = true;
      stop();
    };
  }, [project]);
  const rows = [...builds.values()]
    .filter((b) => b.created_at)
    .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  return (
    <section>
      <h1>
        <Link to="/">Projects</Link> / {project}
      </h1>
      <DevPanel project={project} />
      <h2>Builds</h2>
      {loaded && rows.length === 0 && <p className="empty">No builds of {project} yet.</p>}
      <table className="builds">
        <thead>
          <tr>
            <th>Build</th>
            <th>Status</th>
            <th>Queued</th>
            <th>Duration</th>
            <th>Cache</th>
            <th>Environment</th>
            <th>Created</th>
            <th>Note</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((b) => {
            const by = supersededBy(b);
            return (
              <tr key={b.id} data-build={b.id}>
                <td>
                  <Link to={`/builds/${b.id}`} className="mono">
                    {b.id}
                  </Link>
                </td>
                <td>
                  <StatusPill status={b.status} phase={b.phase} />
                </td>
                <td>{formatMs(b.queue?.waited_ms ?? b.queued_ms)}</td>
                <td>{formatMs(b.duration_ms)}</td>
                <td>{cacheLabel(b)}</td>
                <td>{b.environment ? `node ${b.environment.node} · ${b.environment.package_manager}` : "—"}</td>
                <td className="muted">{ago(b.created_at)}</td>
                <td>
                  {by ? (
                    <>
                      superseded by{" "}
                      <Link to={`/builds/${by}`} className="mono">
                        {by}
                      </Link>
                    </>
                  ) : (
                    (b.error?.code ?? "")
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
