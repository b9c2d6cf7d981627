import { formatMs } from "../api";

export interface Span {
  phase: string;
  ms: number;
}

const COLORS: Record<string, string> = {
  queue: "#94a3b8",
  generating: "#a855f7",
  preparing: "#64748b",
  installing: "#3b82f6",
  scripts: "#06b6d4",
  building: "#f97316",
  publishing: "#22c55e",
};

/** Where the time of a build went: queue, then each phase, as one stacked bar. */
export function Timeline({ spans }: { spans: Span[] }) {
  const total = spans.reduce((sum, s) => sum + s.ms, 0);
  if (total <= 0) return null;
  return (
    <div className="timeline" aria-label="phase timeline">
      <div className="bar">
        {spans.map((s, i) => (
          <div
            key={i}
            className="segment"
            title={`${s.phase}: ${formatMs(s.ms)}`}
            style={{ width: `${(100 * s.ms) / total}%`, background: COLORS[s.phase] ?? "#cbd5e1" }}
          />
        ))}
      </div>
      <ul className="legend">
        {spans.map((s, i) => (
          <li key={i}>
            <span className="swatch" style={{ background: COLORS[s.phase] ?? "#cbd5e1" }} />
            {s.phase} <strong>{formatMs(Math.round(s.ms))}</strong>
          </li>
        ))}
      </ul>
    </div>
  );
}
