import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { formatBytes, kiln, type OpsSummary } from "../api";
import { Chart, type Series } from "../components/Chart";

const CODE_COLORS = ["#22c55e", "#dc2626", "#f97316", "#a855f7", "#0ea5e9", "#eab308", "#64748b", "#ec4899"];
const REFRESH_MS = 5_000;

/** Operations: workers, the queue, results by error code, step times, cache, disk. */
export function OpsPage() {
  const [ops, setOps] = useState<OpsSummary | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    const load = () =>
      kiln
        .ops()
        .then((o) => !stopped && (setOps(o), setProblem(null)))
        .catch((e: Error) => !stopped && setProblem(e.message));
    void load();
    const timer = window.setInterval(load, REFRESH_MS);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, []);
  const results = useMemo(() => {
    if (!ops) return null;
    // The last 24 hours, one slot each, so the axis is the day even when it was quiet.
    const now = new Date();
    now.setMinutes(0, 0, 0);
    const hours = Array.from({ length: 24 }, (_, i) => now.getTime() - (23 - i) * 3_600_000);
    const count = (hour: number, code: string) =>
      ops.results.filter((r) => Date.parse(r.hour) === hour && r.code === code).reduce((n, r) => n + r.count, 0);
    const codes = [...new Set(ops.results.map((r) => r.code))].sort((a, b) =>
      a === "succeeded" ? -1 : b === "succeeded" ? 1 : a.localeCompare(b),
    );
    // Stacked bars: each series is drawn as the running total, tallest first.
    const totals = codes.map((_, i) => hours.map((h) => codes.slice(i).reduce((n, c) => n + count(h, c), 0)));
    const series: Series[] = codes.map((code, i) => ({
      label: code,
      color: code === "succeeded" ? CODE_COLORS[0] : CODE_COLORS[1 + (i % (CODE_COLORS.length - 1))],
      values: totals[i],
    }));
    return { x: hours.map((h) => h / 1000), series };
  }, [ops]);
  if (problem) return <p className="error-box">{problem}</p>;
  if (!ops) return <p className="empty">Loading…</p>;
  return (
    <section className="ops">
      <h1>Operations</h1>
      <div className="stats">
        <div className="stat">
          <strong>{ops.queue.queued}</strong> queued
        </div>
        <div className="stat">
          <strong>{ops.queue.running}</strong> running
        </div>
        <div className="stat">
          <strong>{ops.workers.length}</strong> workers
        </div>
        <div className="stat">
          <strong>{formatBytes(ops.free_disk_mb * 1024 * 1024)}</strong> free disk
        </div>
        {ops.queue.suspended && <div className="stat warn">queue drained (kiln drain)</div>}
      </div>
      <div className="grid">
        <div className="card">
          <h2>Workers</h2>
          <table>
            <thead>
              <tr>
                <th>Worker</th>
                <th>State</th>
                <th>Running</th>
              </tr>
            </thead>
            <tbody>
              {ops.workers.map((w) => (
                <tr key={w.name}>
                  <td className="mono">{w.name}</td>
                  <td>{w.state}</td>
                  <td>{w.current_build ? <Link to={`/builds/${w.current_build}`}>{w.current_build}</Link> : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="card">
          <h2>Results by hour</h2>
          {results && results.x.length > 0 ? <Chart x={results.x} series={results.series} bars /> : <p className="muted">No builds in the last day.</p>}
        </div>
        <div className="card">
          <h2>Step durations</h2>
          <table>
            <thead>
              <tr>
                <th>Step</th>
                <th>Runs</th>
                <th>p50</th>
                <th>p95</th>
                <th>p99</th>
              </tr>
            </thead>
            <tbody>
              {ops.steps.map((s) => (
                <tr key={s.step}>
                  <td>{s.step}</td>
                  <td>{s.count}</td>
                  <td>{s.p50 === null ? "—" : `≤ ${s.p50} s`}</td>
                  <td>{s.p95 === null ? "—" : `≤ ${s.p95} s`}</td>
                  <td>{s.p99 === null ? "—" : `≤ ${s.p99} s`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="card">
          <h2>Cache</h2>
          {ops.cache.map((c) => {
            const rate = c.total ? Math.round((100 * c.hits) / c.total) : 0;
            return (
              <div className="meter" key={c.name}>
                <span>{c.name}</span>
                <div className="track">
                  <div className="fill" style={{ width: `${rate}%` }} />
                </div>
                <span>
                  {rate}% ({c.hits}/{c.total})
                </span>
              </div>
            );
          })}
          <h2>Disk</h2>
          {ops.disk.map((d) => (
            <div className="meter" key={d.name}>
              <span>{d.name}</span>
              <strong>{formatBytes(d.bytes)}</strong>
            </div>
          ))}
        </div>
      </div>
    </section>
  );
}
