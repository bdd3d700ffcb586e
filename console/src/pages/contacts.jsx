// Contacts: the list with search, a new contact (the API's field errors shown beside the
// form), and a CSV import that lists each bad row's line and reason as the API reports them.
import { useState } from "preact/hooks";
import { can, get, request } from "../api.js";
import { Card, Problem } from "../ui.jsx";
import { int, useData } from "../util.js";
import { Search } from "./more.jsx";

const problemText = (err) =>
  err.problem?.errors?.map((x) => `${(x.loc || []).slice(1).join(".")}: ${x.msg}`).join("; ") || err.message;

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
          <p class="lead" data-figure="contacts_total">{int(data.total)} contacts</p>
          <table class="grid" data-table="contacts">
            <thead><tr><th scope="col">Name</th><th scope="col">Phone</th><th scope="col">Email</th><th scope="col">Language</th><th scope="col">Status</th></tr></thead>
            <tbody>
              {data.contacts.map((c) => (
                <tr key={c.id} data-id={c.id}>
                  <td>{c.first_name} {c.last_name}</td>
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
