// Shared view pieces: a titled card, a figure tile, a problem line, a JSON block.
export function Card({ title, children, wide = false, id }) {
  return (
    <section class={wide ? "card wide" : "card"} aria-labelledby={id && `${id}-h`} data-card={id}>
      <h2 id={id && `${id}-h`}>{title}</h2>
      {children}
    </section>
  );
}

export function Tile({ label, value, name }) {
  return (
    <div class="tile" data-tile={name}>
      <span class="tile-value">{value}</span>
      <span class="tile-label">{label}</span>
    </div>
  );
}

export function Problem({ error }) {
  if (!error) return null;
  if (error.status === 403) return <p class="note">This token's scopes do not include this.</p>;
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

export const Json = ({ value }) => <pre class="json">{JSON.stringify(value, null, 2)}</pre>;

/** Horizontal bars for a {label: count} object, largest first; the counts are printed. */
export function Bars({ counts, name }) {
  const rows = Object.entries(counts || {}).sort((a, b) => b[1] - a[1]);
  const top = Math.max(1, ...rows.map((r) => r[1]));
  return (
    <table class="bars" data-bars={name}>
      <tbody>
        {rows.map(([label, n]) => (
          <tr key={label} data-key={label}>
            <th scope="row">{label}</th>
            <td class="bar-cell">
              <span class="bar" style={{ width: `${(100 * n) / top}%` }} />
            </td>
            <td class="num">{n}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
