// Webhooks: the tenant's endpoints, a new one (its secret shown once, with a copy button), and
// an endpoint's page: enable/disable, a rotated secret (shown once), a test event, the delivery
// log with a status filter and pages, a delivery's retry, and a replay since a moment. Reading
// needs webhooks:read; every control that changes something needs webhooks:write.
import { useState } from "preact/hooks";
import { can, get, problemText, request } from "../api.js";
import { href, setParams } from "../route.js";
import { Card, Problem } from "../ui.jsx";
import { browserZone, count, useData, when } from "../util.js";

const BASE = "/kalimera/webhooks";
const EVENTS = ["conversation.started", "conversation.ended", "conversation.analyzed", "recording.rejected", "contacts.imported", "webhook.test"];
const STATUSES = ["pending", "delivered", "failed"];

/** A secret the API shows this once: printed, selectable, and copied with one button. */
function Secret({ value, note }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    await navigator.clipboard.writeText(value);
    setCopied(true);
  };
  return (
    <div class="secret" role="status" data-state="secret">
      <p>{note} It is not shown again: keep it now.</p>
      <code data-field="secret">{value}</code>
      <div class="row">
        <button type="button" onClick={copy}>Copy the secret</button>
        {copied && <span class="note" data-state="copied">Copied.</span>}
      </div>
    </div>
  );
}

function NewEndpoint({ onDone }) {
  const [error, setError] = useState(null);
  const [made, setMade] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const body = { url: form.get("url"), description: form.get("description") || "", events: form.getAll("events") };
    try {
      const answer = await request("POST", BASE, { body });
      e.target.reset();
      setError(null);
      setMade(answer);
      onDone();
    } catch (err) {
      setError(problemText(err));
    }
  };
  return (
    <form class="controls" aria-label="New endpoint" onSubmit={submit}>
      <label class="grow">URL<input name="url" type="url" required placeholder="https://crm.example.com/hooks/kalimera" /></label>
      <label class="grow">Description<input name="description" maxLength={500} /></label>
      <fieldset class="events">
        <legend>Events (none ticked: every type, new ones included)</legend>
        {EVENTS.map((t) => (
          <label key={t} class="check"><input type="checkbox" name="events" value={t} /> {t}</label>
        ))}
      </fieldset>
      <button type="submit">Add endpoint</button>
      {error && <p class="error" role="alert" data-state="create-error">{error}</p>}
      {made && (
        <div class="import-result">
          <Secret value={made.secret} note={<>The endpoint <a href={href("webhooks", {}, made.id)}>{made.url}</a> was added; its signing secret:</>} />
        </div>
      )}
    </form>
  );
}

export function Webhooks() {
  const [version, setVersion] = useState(0);
  const tz = browserZone();
  const { data, error } = useData(() => get(BASE), [version]);
  return (
    <>
      <h1>Webhooks</h1>
      {can("webhooks:write") && (
        <div class="cards">
          <Card title="New endpoint" id="new-endpoint" wide><NewEndpoint onDone={() => setVersion((v) => v + 1)} /></Card>
        </div>
      )}
      <Problem error={error} />
      {data && (
        <div class="scroll">
          <p class="lead" data-figure="endpoints_total">{count(data.items.length, "endpoint")}</p>
          <table class="grid" data-table="webhooks">
            <thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">State</th><th scope="col">Description</th><th scope="col">Created</th></tr></thead>
            <tbody>
              {data.items.map((w) => (
                <tr key={w.id} data-id={w.id}>
                  <td><a href={href("webhooks", {}, w.id)}>{w.url}</a></td>
                  <td>{w.events.length ? w.events.join(", ") : "all"}</td>
                  <td>{w.enabled ? "enabled" : `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ""}`}</td>
                  <td>{w.description}</td>
                  <td>{when(w.created_at, tz)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** The endpoint's changes: enable/disable, a new secret, a test event, a replay. */
function Actions({ w, onChange }) {
  const [result, setResult] = useState(null);
  const act = async (what, method, path, body) => {
    try {
      const answer = await request(method, path, { body });
      setResult({ what, answer });
      onChange();
    } catch (err) {
      setResult({ what, error: problemText(err) });
    }
  };
  const replay = (e) => {
    e.preventDefault();
    const since = new FormData(e.currentTarget).get("since");
    act("replay", "POST", `${BASE}/${w.id}/replay`, { since: new Date(since).toISOString() });
  };
  return (
    <>
      <div class="row wrap">
        <button type="button" onClick={() => act("enabled", "PATCH", `${BASE}/${w.id}`, { enabled: !w.enabled })}>{w.enabled ? "Disable" : "Enable"}</button>
        <button type="button" onClick={() => act("rotated", "POST", `${BASE}/${w.id}/rotate-secret`)}>Rotate the secret</button>
        <button type="button" onClick={() => act("test", "POST", `${BASE}/${w.id}/test`)}>Send a test event</button>
      </div>
      <form class="controls" aria-label="Replay events" onSubmit={replay}>
        <label>Replay every event since (your time)<input type="datetime-local" name="since" required /></label>
        <button type="submit">Replay</button>
      </form>
      {result?.error && <p class="error" role="alert">{result.error}</p>}
      {result?.what === "rotated" && result.answer && (
        <Secret value={result.answer.secret} note={<>The new secret (the previous one signs beside it until {when(result.answer.previous_secret_expires_at, browserZone())}):</>} />
      )}
      {(result?.what === "test" || result?.what === "replay") && result.answer && (
        <p class="note" role="status" data-state="queued">Queued: <span data-figure="queued">{count(result.answer.deliveries, "delivery", "deliveries")}</span>.</p>
      )}
    </>
  );
}

function Deliveries({ w, params, version, onChange }) {
  const tz = browserZone();
  const page = Number(params.page || 1);
  const q = { status: params.status, page, limit: 20 };
  const [mine, setMine] = useState(0);
  const [error, setError] = useState(null);
  const { data, error: loadError } = useData(() => get(`${BASE}/${w.id}/deliveries`, q), [w.id, JSON.stringify(q), version, mine]);
  const pages = data ? Math.max(1, Math.ceil(data.total / data.limit)) : 1;
  const retry = async (d) => {
    try {
      await request("POST", `${BASE}/${w.id}/deliveries/${d.id}/retry`);
      setError(null);
      onChange();
    } catch (err) {
      setError(problemText(err));
    }
  };
  return (
    <>
      <form class="controls" aria-label="Delivery filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select name="status" value={params.status || ""} onChange={(e) => setParams({ status: e.currentTarget.value, page: "" })}>
            <option value="">Any</option>
            {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <button type="button" onClick={() => setMine((v) => v + 1)}>Refresh</button>
      </form>
      <Problem error={loadError} />
      {error && <p class="error" role="alert">{error}</p>}
      {data && (
        <>
          <p class="lead" data-figure="deliveries_total">{count(data.total, "delivery", "deliveries")}</p>
          <div class="scroll">
            <table class="grid" data-table="deliveries">
              <thead>
                <tr>
                  <th scope="col">Created</th><th scope="col">Event</th><th scope="col">Status</th><th scope="col">Attempts</th>
                  <th scope="col">Last HTTP</th><th scope="col">Last latency</th><th scope="col">Last error</th><th scope="col">Next try</th>
                  {can("webhooks:write") && <th scope="col"><span class="sr">Actions</span></th>}
                </tr>
              </thead>
              <tbody>
                {data.items.map((d) => {
                  const last = d.attempts[d.attempts.length - 1];
                  return (
                    <tr key={d.id} data-id={d.id} data-status={d.status}>
                      <td>{when(d.created_at, tz)}</td>
                      <td>{d.event_type}</td>
                      <td data-key="status">{d.status}</td>
                      <td class="num" data-key="attempts">{d.attempts.length}</td>
                      <td class="num" data-key="http">{last?.status ?? "–"}</td>
                      <td class="num" data-key="latency">{last ? `${last.latency_ms} ms` : "–"}</td>
                      <td class="wrap">{last?.error || ""}</td>
                      <td>{when(d.next_attempt_at, tz)}</td>
                      {can("webhooks:write") && <td><button type="button" onClick={() => retry(d)} aria-label={`Retry the delivery of ${d.event_type} created ${when(d.created_at, tz)}`}>Retry</button></td>}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Delivery pages">
            {page > 1 && <a href={href("webhooks", { ...params, page: page - 1 }, w.id)}>Previous</a>}
            <span>Page {page} of {pages}</span>
            {page < pages && <a href={href("webhooks", { ...params, page: page + 1 }, w.id)}>Next</a>}
          </nav>
        </>
      )}
    </>
  );
}

export function Webhook({ id, params }) {
  const [version, setVersion] = useState(0);
  const changed = () => setVersion((v) => v + 1);
  const tz = browserZone();
  const { data: w, error } = useData(() => get(`${BASE}/${id}`), [id, version]);
  return (
    <>
      <p><a href={href("webhooks")}>← Webhooks</a></p>
      <Problem error={error} />
      {w && (
        <>
          <h1 class="wrap">{w.url} <small data-field="state">{w.enabled ? "enabled" : "disabled"}</small></h1>
          <div class="cards">
            <Card title="Endpoint" id="endpoint">
              <dl class="facts">
                <dt>Events</dt><dd>{w.events.length ? w.events.join(", ") : "all"}</dd>
                <dt>Description</dt><dd>{w.description || "–"}</dd>
                {w.disabled_reason && (<><dt>Disabled by Kalimera</dt><dd>{w.disabled_reason}</dd></>)}
                {w.previous_secret_expires_at && (<><dt>Previous secret signs until</dt><dd>{when(w.previous_secret_expires_at, tz)}</dd></>)}
                <dt>Created</dt><dd>{when(w.created_at, tz)}</dd>
              </dl>
            </Card>
            {can("webhooks:write") && <Card title="Actions" id="actions"><Actions w={w} onChange={changed} /></Card>}
            <Card title="Deliveries" id="deliveries" wide>
              <Deliveries w={w} params={params} version={version} onChange={changed} />
            </Card>
          </div>
        </>
      )}
    </>
  );
}
