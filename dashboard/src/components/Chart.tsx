import { useEffect, useRef } from "react";
import uPlot from "uplot";

export interface Series {
  label: string;
  color: string;
  values: (number | null)[];
}

/** A small bar/line chart over an x axis of labels (hours, steps). */
export function Chart({
  x,
  series,
  bars = false,
  height = 180,
  yLabel,
}: {
  x: number[];
  series: Series[];
  bars?: boolean;
  height?: number;
  yLabel?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    const width = ref.current.clientWidth || 480;
    const plot = new uPlot(
      {
        width,
        height,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { label: yLabel }],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            fill: bars ? s.color + "99" : undefined,
            width: bars ? 0 : 2,
            paths: bars ? uPlot.paths.bars!({ size: [0.7, 40] }) : undefined,
            points: { show: !bars },
          })),
        ],
      },
      [x, ...series.map((s) => s.values)],
      ref.current,
    );
    return () => plot.destroy();
  }, [x, series, bars, height, yLabel]);
  return <div className="chart" ref={ref} />;
}
