import { useVirtualizer } from "@tanstack/react-virtual";
import { useMemo, useRef, useState } from "react";

export interface LogLine {
  /** The section: the build's phase, or "scripts" for dependency install scripts. */
  phase: string;
  stream: string;
  text: string;
  kiln: boolean;
}

type Row = { kind: "phase"; phase: string; count: number } | { kind: "line"; line: LogLine; n: number };

const PHASE_NAMES: Record<string, string> = {
  queued: "Queue",
  generating: "Generate",
  preparing: "Prepare",
  installing: "Install",
  scripts: "Scripts",
  building: "Build",
  publishing: "Publish",
  done: "Done",
};

/** The build log as collapsible phase sections, virtualised so 100,000 lines stay smooth. */
export function LogView({ lines, version, follow }: { lines: LogLine[]; version: number; follow: boolean }) {
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const parent = useRef<HTMLDivElement>(null);
  const rows = useMemo<Row[]>(() => {
    const out: Row[] = [];
    let current: { kind: "phase"; phase: string; count: number } | null = null;
    lines.forEach((line, i) => {
      if (!current || current.phase !== line.phase) {
        current = { kind: "phase", phase: line.phase, count: 0 };
        out.push(current);
      }
      current.count += 1;
      if (!collapsed.has(line.phase)) out.push({ kind: "line", line, n: i + 1 });
    });
    return out;
    // `version` changes when lines were appended in place.
  }, [lines, version, collapsed]); // eslint-disable-line react-hooks/exhaustive-deps
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => parent.current,
    estimateSize: () => 18,
    overscan: 30,
  });
  const last = rows.length - 1;
  const atBottom = useRef(true);
  if (follow && atBottom.current && last >= 0) {
    queueMicrotask(() => virtualizer.scrollToIndex(last, { align: "end" }));
  }
  return (
    <div
      className="log"
      ref={parent}
      data-lines={lines.length}
      onScroll={(e) => {
        const el = e.currentTarget;
        atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      }}
    >
      <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
        {virtualizer.getVirtualItems().map((item) => {
          const row = rows[item.index];
          const style = { transform: `translateY(${item.start}px)` };
          if (row.kind === "phase") {
            const open = !collapsed.has(row.phase);
            return (
              <div
                key={item.key}
                className="log-phase"
                style={style}
                role="button"
                aria-expanded={open}
                onClick={() =>
                  setCollapsed((c) => {
                    const next = new Set(c);
                    if (next.has(row.phase)) next.delete(row.phase);
                    else next.add(row.phase);
                    return next;
                  })
                }
              >
                {open ? "▾" : "▸"} {PHASE_NAMES[row.phase] ?? row.phase}{" "}
                <span className="muted">{row.count} lines</span>
              </div>
            );
          }
          const { line } = row;
          return (
            <div
              key={item.key}
              className={`log-line ${line.kiln ? "kiln" : ""} ${line.stream === "stderr" ? "stderr" : ""}`}
              style={style}
            >
              <span className="n">{row.n}</span>
              {line.text}
            </div>
          );
        })}
      </div>
    </div>
  );
}
