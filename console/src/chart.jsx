// A uPlot line chart over periods (YYYY-MM-DD, shown as dates in UTC: a period is a local day,
// week or month already, so no further zone shift applies). It follows its box's width.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";

const COLOURS = ["#2563eb", "#d97706", "#16a34a", "#dc2626", "#7c3aed", "#0891b2"];

export function Chart({ periods, series, label, height = 220 }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el || !periods.length) return undefined;
    const xs = periods.map((p) => Date.parse(`${p}T00:00:00Z`) / 1000);
    const opts = {
      width: el.clientWidth || 300,
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series: [
        {},
        ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: xs.length < 40 } })),
      ],
      axes: [{}, { size: 48 }],
      legend: { live: false },
    };
    const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [periods, series]);
  if (!periods.length) return <p class="note">No periods in this range.</p>;
  return <div class="chart" ref={box} role="img" aria-label={label} />;
}
