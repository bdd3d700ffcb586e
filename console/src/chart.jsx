// A uPlot line chart over periods (YYYY-MM-DD, shown as dates in UTC: a period is a local day,
// week or month already, so no further zone shift applies). It follows its box's width.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";

const COLOURS = ["#2563eb", "#d97706", "#16a34a", "#dc2626", "#7c3aed", "#0891b2"];

const day = (ts) => new Date(ts * 1000).toISOString().slice(0, 10);

/** At most `most` of the periods, evenly spaced, as the x axis' ticks: a period is a date. */
function ticks(xs, most) {
  const step = Math.max(1, Math.ceil(xs.length / most));
  return xs.filter((_, i) => i % step === 0);
}

/**
 * `series`: [{label, values, colour?, scale?}]; a series on scale "right" gets the right axis
 * (percentages beside milliseconds, say).
 */
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
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.colour || COLOURS[i % COLOURS.length],
          width: 2,
          scale: s.scale || "y",
          points: { show: xs.length < 40 },
        })),
      ],
      axes: [
        { splits: () => ticks(xs, Math.max(2, Math.floor(el.clientWidth / 90))), values: (_, splits) => splits.map(day) },
        { size: 48 },
        ...(series.some((s) => s.scale === "right") ? [{ scale: "right", side: 1, size: 48, grid: { show: false } }] : []),
      ],
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
