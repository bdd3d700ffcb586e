// Small shared pieces: a data-loading hook, dates in a time zone, number formats.
import { useEffect, useState } from "preact/hooks";

/** Load with `load()` whenever `deps` change; `every` (ms) reloads in the background. */
export function useData(load, deps, every = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  useEffect(() => {
    let live = true;
    const run = () =>
      load().then(
        (data) => live && setState({ data, error: null, loading: false }),
        (error) => live && setState((s) => ({ ...s, error, loading: false })),
      );
    setState((s) => ({ ...s, loading: true }));
    run();
    const timer = every ? setInterval(run, every) : null;
    return () => {
      live = false;
      if (timer) clearInterval(timer);
    };
  }, deps);
  return state;
}

export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** Today's date (YYYY-MM-DD) in a time zone, moved by `days`. */
export function localDate(tz, days = 0) {
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: tz }).format(new Date());
  const d = new Date(`${today}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export const zones = () => (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : ["UTC"]);

/** "1 contact", "2 contacts" ("1 delivery", "2 deliveries" with the plural given). */
export const count = (n, noun, plural = `${noun}s`) => `${int(n)} ${n === 1 ? noun : plural}`;
export const int = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));
export const fixed = (n, digits = 2) => (n === null || n === undefined ? "–" : Number(n).toFixed(digits));
export const seconds = (s) => {
  if (s === null || s === undefined) return "–";
  const m = Math.floor(s / 60);
  return m ? `${m} m ${Math.round(s % 60)} s` : `${Number(s).toFixed(1)} s`;
};
export const when = (iso, tz) =>
  iso
    ? new Intl.DateTimeFormat("en-GB", { timeZone: tz, dateStyle: "medium", timeStyle: "short" }).format(new Date(iso))
    : "–";
