import { useEffect, useRef } from "react";
import uPlot from "uplot";

/** Recent build durations of a project, oldest first (failed builds as red points). */
export function Sparkline({ values, failed }: { values: (number | null)[]; failed: boolean[] }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!ref.current || values.length === 0) return;
    const xs = values.map((_, i) => i);
    const ys = values.map((v) => (v === null ? null : v / 1000));
    const bad = values.map((v, i) => (failed[i] && v !== null ? v / 1000 : null));
    const plot = new uPlot(
      {
        width: 140,
        height: 36,
        cursor: { show: false },
        legend: { show: false },
        scales: { x: { time: false } },
        axes: [{ show: false }, { show: false }],
        series: [
          {},
          { stroke: "#f97316", width: 1.5, points: { show: false } },
          { stroke: "transparent", points: { show: true, size: 5, fill: "#dc2626", stroke: "#dc2626" } },
        ],
      },
      [xs, ys, bad],
      ref.current,
    );
    return () => plot.destroy();
  }, [values, failed]);
  return <div className="sparkline" ref={ref} title="recent build times (s)" />;
}
