// Contacts: the list with search, a new contact (the API's field errors shown beside the
// form), and a CSV import that lists each bad row's line and reason as the API reports them.
import { useState } from "preact/hooks";
import { can, get, getTagged, problemText, request } from "../api.js";
import { href } from "../route.js";
import { Card, Problem } from "../ui.jsx";
import { browserZone, count, seconds, useData, when } from "../util.js";
import { useDraft } from "./conversations.jsx";
import { Search } from "./more.jsx";

function NewContact({ onDone }) {
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const body = Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== ""));
    try {
      await request("POST", "/kalimera/contact", { body });
      form.reset();
      setError(null);
      onDone();
    } catch (err) {
      setError(problemText(err));
    }
  };
  return (
    <form class="controls" aria-label="New contact" onSubmit={submit}>
      <label>First name<input name="first_name" required /></label>
      <label>Last name<input name="last_name" required /></label>
      <label>Phone<input name="contact_no" type="tel" placeholder="+302101234567" /></label>
      <label>Email<input name="email" type="email" /></label>
      <button type="submit">Add contact</button>
      {error && <p class="error" role="alert" data-state="create-error">{error}</p>}
    </form>
  );
}

function Import({ onDone }) {
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    try {
      const answer = await request("POST", "/kalimera/contact/import", { body: new FormData(e.currentTarget) });
      setResult(answer);
      onDone();
    } catch (err) {
      setError(problemText(err));
    }
  };
  return (
    <form class="controls" aria-label="Import contacts" onSubmit={submit}>
      <label class="grow">
        CSV file (a header row: first_name, last_name, contact_no, email, …)
        <input type="file" name="file" accept=".csv,text/csv" required />
      </label>
      <button type="submit">Import</button>
      {error && <p class="error" role="alert">{error}</p>}
      {result && (
        <div class="import-result" data-state="imported" role="status">
          <p><span data-figure="created">{result.created}</span> created, <span data-figure="rejected">{result.errors.length}</span> rejected</p>
          {result.errors.length > 0 && (
            <table class="grid" data-table="import-errors">
              <thead><tr><th scope="col">Line</th><th scope="col">Reason</th></tr></thead>
              <tbody>
                {result.errors.map((r) => (
                  <tr key={r.row} data-row={r.row}><td class="num">{r.row}</td><td class="wrap">{r.detail}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </form>
  );
}

/** The contact's latest calls (the API's own list for a contact) and a link to all of them in
 * the filterable conversation list. */
function Calls({ id }) {
  const { data, error } = useData(() => get(`/kalimera/contact/${id}/conversations`, { limit: 5 }), [id]);
  const tz = browserZone();
  return (
    <Card title="Calls" id="contact-calls">
      <Problem error={error} />
      {data && (
        <>
          <p>
            <a href={href("conversations", { contact_id: id })} data-figure="contact_calls">{count(data.total, "call")}</a> with this contact
          </p>
          {data.items.length > 0 && (
            <ul class="plain">
              {data.items.map((c) => (
                <li key={c.id} data-id={c.id}>
                  <a href={href("conversations", {}, c.id)}>{when(c.started_at, tz)}</a> · {c.profile_type} · {c.status} · {seconds(c.duration)}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </Card>
  );
}

const EDITABLE = ["first_name", "last_name", "contact_no", "email", "language", "status"];

/** One contact, edited under If-Match: a change saved by someone else meanwhile (412) is said,
 * with a reload, instead of being overwritten. */
export function Contact({ id }) {
  const [version, setVersion] = useState(0);
  const [message, setMessage] = useState(null);
  const { data, error } = useData(() => getTagged(`/kalimera/contact/${id}`), [id, version]);
  const bind = useDraft(data ? Object.fromEntries(EDITABLE.map((k) => [k, data.data[k] ?? ""])) : {});
  const save = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const body = Object.fromEntries(EDITABLE.map((k) => [k, form.get(k) === "" ? null : form.get(k)]));
    try {
      await request("PUT", `/kalimera/contact/${id}`, { body, headers: { "If-Match": data.etag } });
      setMessage({ kind: "saved", text: "Saved." });
      setVersion((v) => v + 1);
    } catch (err) {
      const stale = err.status === 412;
      setMessage({ kind: stale ? "conflict" : "error", text: stale ? "Not saved: this contact changed since you opened it. Reload to see the current version." : problemText(err) });
    }
  };
  const reload = () => {
    setMessage(null);
    setVersion((v) => v + 1);
  };
  return (
    <>
      <p><a href={href("contacts")}>← Contacts</a></p>
      <Problem error={error} />
      {data && (
        <>
          <h1>{data.data.first_name} {data.data.last_name}</h1>
          <form class="controls" aria-label="Edit contact" onSubmit={save}>
            {EDITABLE.map((k) => (
              <label key={k}>{k.replace("_", " ")}<input {...bind(k)} disabled={!can("contacts:write")} /></label>
            ))}
            {can("contacts:write") && <button type="submit">Save</button>}
          </form>
          {message && (
            <div class={message.kind === "saved" ? "note" : "conflict"} role="alert" data-state={message.kind}>
              <p>{message.text}</p>
              {message.kind === "conflict" && <button type="button" onClick={reload}>Reload</button>}
            </div>
          )}
          {can("conversations:read") && <div class="cards"><Calls id={id} /></div>}
        </>
      )}
    </>
  );
}

export function Contacts({ params }) {
  const [version, setVersion] = useState(0);
  const q = { search: params.search, page: params.page || 1, per_page: 20 };
  const { data, error } = useData(() => get("/kalimera/contact", q), [JSON.stringify(q), version]);
  const refresh = () => setVersion((v) => v + 1);
  return (
    <>
      <h1>Contacts</h1>
      {can("contacts:write") && (
        <div class="cards">
          <Card title="New contact" id="new-contact"><NewContact onDone={refresh} /></Card>
          <Card title="Import a CSV file" id="import"><Import onDone={refresh} /></Card>
        </div>
      )}
      <Search value={params.search} label="Search contacts" />
      <Problem error={error} />
      {data && (
        <div class="scroll">
          <p class="lead" data-figure="contacts_total">{count(data.total, "contact")}</p>
          <table class="grid" data-table="contacts">
            <thead><tr><th scope="col">Name</th><th scope="col">Phone</th><th scope="col">Email</th><th scope="col">Language</th><th scope="col">Status</th></tr></thead>
            <tbody>
              {data.contacts.map((c) => (
                <tr key={c.id} data-id={c.id}>
                  <td><a href={href("contacts", {}, c.id)}>{c.first_name} {c.last_name}</a></td>
                  <td>{c.contact_no || ""}</td>
                  <td>{c.email || ""}</td>
                  <td>{c.language}</td>
                  <td>{c.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
