// Overview: realtime tiles (every 10 s), history, sentiment, call breakdown and outcomes, for
// the range, zone, agent and granularity kept in the URL. Every figure is the API's as answered.
import { can, get } from "../api.js";
import { Chart } from "../chart.jsx";
import { href, setParams } from "../route.js";
import { Bars, Card, Problem, Tile } from "../ui.jsx";
import { browserZone, fixed, int, localDate, seconds, useData, zones } from "../util.js";

const BASE = "/kalimera/statistics";
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** The view's filters: the URL's, else the defaults (last 30 days in the browser's zone). */
export function overviewFilters(params) {
  const tz = params.tz || browserZone();
  return {
    tz,
    start: params.start || localDate(tz, -29),
    end: params.end || localDate(tz, 0),
    agent_id: params.agent || "",
    granularity: params.granularity || "day",
  };
}

function Controls({ f }) {
  const agents = useData(() => (can("agents:read") ? get("/kalimera/ai-agent", { limit: 100 }) : Promise.resolve(null)), []);
  return (
    <form class="controls" aria-label="Overview controls" onSubmit={(e) => e.preventDefault()}>
      <label>
        From
        <input type="date" name="start" value={f.start} onChange={(e) => setParams({ start: e.currentTarget.value })} />
      </label>
      <label>
        To
        <input type="date" name="end" value={f.end} onChange={(e) => setParams({ end: e.currentTarget.value })} />
      </label>
      <label>
        Time zone
        <select name="tz" value={f.tz} onChange={(e) => setParams({ tz: e.currentTarget.value })}>
          {[...new Set([f.tz, "UTC", ...zones()])].map((z) => (
            <option key={z} value={z}>
              {z}
            </option>
          ))}
        </select>
      </label>
      {agents.data && (
        <label>
          Agent
          <select name="agent" value={f.agent_id} onChange={(e) => setParams({ agent: e.currentTarget.value })}>
            <option value="">All agents</option>
            {agents.data.items.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </label>
      )}
      <label>
        Granularity
        <select name="granularity" value={f.granularity} onChange={(e) => setParams({ granularity: e.currentTarget.value })}>
          <option value="day">Day</option>
          <option value="week">Week</option>
          <option value="month">Month</option>
        </select>
      </label>
    </form>
  );
}

function Realtime({ f }) {
  const { data, error } = useData(() => get(`${BASE}/realtime`, { tz: f.tz, agent_id: f.agent_id }), [f.tz, f.agent_id], 10_000);
  return (
    <Card title="Active now" id="realtime">
      <Problem error={error} />
      <div class="tiles" aria-live="polite">
        <Tile name="active_inbound" label="Inbound" value={int(data?.active_inbound)} />
        <Tile name="active_outbound" label="Outbound" value={int(data?.active_outbound)} />
        <Tile name="active_total" label="Total" value={int(data?.active_total)} />
      </div>
    </Card>
  );
}

const dayBefore = (day) => {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
};

/** The conversation list's filters for one history period: its local days inside the range (a
 * week or month may start before the range), in the same zone, for the same agent. */
export function periodFilters(q, rows, i) {
  const next = rows[i + 1]?.period_start;
  const start = rows[i].period_start > q.start ? rows[i].period_start : q.start;
  const end = next && dayBefore(next) < q.end ? dayBefore(next) : q.end;
  return { start, end, tz: q.tz, agent_id: q.agent_id };
}

function History({ q }) {
  const { data, error } = useData(() => get(`${BASE}/history`, q), [JSON.stringify(q)]);
  const rows = data?.series || [];
  const keys = ["inbound", "outbound", "completed", "failed"];
  return (
    <Card title="Conversations" id="history" wide>
      <Problem error={error} />
      <Chart
        label="Conversations per period: inbound, outbound, completed, failed"
        periods={rows.map((r) => r.period_start)}
        series={keys.map((k) => ({ label: k, values: rows.map((r) => r[k]) }))}
      />
      <div class="scroll">
        <table class="grid" data-table="history">
          <thead>
            <tr>
              <th scope="col">Period</th>
              {keys.map((k) => (
                <th scope="col" key={k}>{k}</th>
              ))}
              <th scope="col">total</th>
              <th scope="col">avg duration</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={r.period_start} data-period={r.period_start}>
                <th scope="row">{r.period_start}</th>
                {keys.map((k) => (
                  <td class="num" data-key={k} key={k}>{r[k]}</td>
                ))}
                <td class="num" data-key="total">{can("conversations:read") ? <a href={href("conversations", periodFilters(q, rows, i))} title="These conversations">{r.total}</a> : r.total}</td>
                <td class="num">{seconds(r.avg_duration)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

function Sentiment({ q }) {
  const { data, error } = useData(() => get(`${BASE}/sentiment`, q), [JSON.stringify(q)]);
  const rows = data?.series || [];
  const labels = ["positive", "neutral", "negative", "unknown"];
  const colours = { positive: "#16a34a", neutral: "#6b7280", negative: "#dc2626", unknown: "#d97706" };
  return (
    <Card title="Sentiment" id="sentiment" wide>
      <Problem error={error} />
      {data && (
        <div class="tiles">
          {labels.map((l) => (
            <Tile key={l} name={`sentiment_${l}`} label={`${l} (${fixed(data.percentages[l], 1)} %)`} value={int(data[l])} />
          ))}
        </div>
      )}
      <Chart
        label="Sentiment per period"
        periods={rows.map((r) => r.period_start)}
        series={labels.map((l) => ({ label: l, values: rows.map((r) => r[l]), colour: colours[l] }))}
        height={180}
      />
    </Card>
  );
}

function HeatRow({ label, counts, names, name }) {
  const top = Math.max(1, ...counts);
  return (
    <div class="heat" data-heat={name}>
      <span class="heat-label">{label}</span>
      <ol class="heat-cells" style={{ gridTemplateColumns: `repeat(${counts.length}, minmax(0, 1fr))` }}>
        {counts.map((n, i) => (
          <li key={i} data-cell={i} title={`${names[i]}: ${n}`} class={`lvl${Math.ceil((4 * n) / top)}`}>
            <span class="cell-name">{names[i]}</span>
            <span class="cell-n">{n}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}

/** The weekday x local hour heat map: a row per weekday (Monday first), a cell per hour. */
function HeatMap({ matrix }) {
  const top = Math.max(1, ...matrix.flat());
  return (
    <table class="heatmap" data-heat="weekday-hour">
      <caption class="sr">Conversations by weekday and local hour</caption>
      <thead>
        <tr>
          <td />
          {matrix[0].map((_, h) => (
            <th scope="col" key={h}>{h % 3 === 0 ? String(h).padStart(2, "0") : ""}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {matrix.map((row, d) => (
          <tr key={d}>
            <th scope="row">{WEEKDAYS[d]}</th>
            {row.map((n, h) => (
              <td key={h} data-cell={`${d}-${h}`} class={`lvl${Math.ceil((4 * n) / top)}`} title={`${WEEKDAYS[d]} ${String(h).padStart(2, "0")}:00: ${n}`}>
                {n || ""}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Breakdown({ q }) {
  const { granularity: _, ...window } = q;
  const { data, error } = useData(() => get(`${BASE}/call-breakdown`, window), [JSON.stringify(window)]);
  return (
    <Card title="Call breakdown" id="breakdown" wide>
      <Problem error={error} />
      {data && (
        <>
          <p class="lead">
            <span data-figure="breakdown_total">{int(data.total)}</span> conversations, average {seconds(data.avg_duration)}
          </p>
          <HeatMap matrix={data.by_weekday_hour} />
          <HeatRow name="hour" label="Local hour" counts={data.by_hour} names={data.by_hour.map((_, i) => String(i).padStart(2, "0"))} />
          <HeatRow name="weekday" label="Weekday" counts={data.by_weekday} names={WEEKDAYS} />
          <div class="columns">
            <div>
              <h3>Duration</h3>
              <Bars name="duration" counts={data.by_duration_bucket} />
            </div>
            <div>
              <h3>Language</h3>
              <Bars name="language" counts={data.by_language} />
            </div>
            <div>
              <h3>Status</h3>
              <Bars name="status" counts={data.by_status} />
              <h3>Direction</h3>
              <Bars name="direction" counts={data.by_profile_type} />
            </div>
          </div>
        </>
      )}
    </Card>
  );
}

function Outcomes({ q }) {
  const { data, error } = useData(() => get(`${BASE}/outcomes`, q), [JSON.stringify(q)]);
  const t = data?.totals;
  const rows = data?.series || [];
  const cost = t && (t.cost_total === null ? "several currencies" : `${fixed(t.cost_total, 4)} ${t.currency || ""}`);
  return (
    <Card title="Outcomes" id="outcomes" wide>
      <Problem error={error} />
      {t && (
        <>
          <div class="tiles">
            <Tile name="ended" label="Ended" value={int(t.ended)} />
            <Tile name="success_rate" label={`Success rate (${t.success_pass}/${t.success_evaluated})`} value={t.success_rate === null ? "–" : `${t.success_rate} %`} />
            <Tile name="avg_score" label="Average score" value={t.avg_score ?? "–"} />
            <Tile name="cost_total" label="Cost" value={cost} />
            <Tile name="latency_p50_ms" label="Latency p50" value={t.latency_p50_ms === null ? "–" : `${t.latency_p50_ms} ms`} />
            <Tile name="latency_p90_ms" label="Latency p90" value={t.latency_p90_ms === null ? "–" : `${t.latency_p90_ms} ms`} />
          </div>
          <div class="columns">
            <div>
              <h3>Ended reasons</h3>
              <Bars name="ended_reason" counts={Object.fromEntries(Object.entries(t.by_ended_reason).filter(([, n]) => n))} />
            </div>
            <div class="grow">
              <h3>Success rate and latency</h3>
              <Chart
                label="Success rate (%) and latency p50 / p90 (ms) per period"
                periods={rows.map((r) => r.period_start)}
                series={[
                  { label: "p50 ms", values: rows.map((r) => r.latency_p50_ms) },
                  { label: "p90 ms", values: rows.map((r) => r.latency_p90_ms) },
                  { label: "success % (right)", values: rows.map((r) => r.success_rate), scale: "right" },
                ]}
                height={180}
              />
            </div>
            <div class="grow">
              <h3>Cost per period{t.currency ? ` (${t.currency})` : ""}</h3>
              {t.cost_total === null ? (
                <p class="note">Several currencies: see each call's cost.</p>
              ) : (
                <Chart
                  label="Cost per period"
                  periods={rows.map((r) => r.period_start)}
                  series={[{ label: `cost ${t.currency || ""}`, values: rows.map((r) => r.cost_total), colour: "#7c3aed" }]}
                  height={180}
                />
              )}
            </div>
          </div>
        </>
      )}
    </Card>
  );
}

export function Overview({ params }) {
  const f = overviewFilters(params);
  const q = { start: f.start, end: f.end, tz: f.tz, agent_id: f.agent_id, granularity: f.granularity };
  return (
    <>
      <h1>Overview</h1>
      <Controls f={f} />
      <div class="cards">
        <Realtime f={f} />
        <History q={q} />
        <Outcomes q={q} />
        <Sentiment q={q} />
        <Breakdown q={q} />
      </div>
    </>
  );
}
