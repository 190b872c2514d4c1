"""The explorer page's own script and style (the viewer itself is chemiscope's bundle).

The script reads the page data from `<script id="explore-data" type="application/json">`,
builds the table with `textContent` only (text from crystal files is never parsed as HTML),
sorts on a header click, filters as the filter box is typed into, and keeps the table row,
chemiscope's selection and the element legend in step. `window.explore` exposes the state the
browser test checks: `ready`, `error`, `visibleRows()`, `select(i)`.
"""

SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById('explore-data').textContent);
  const rows = data.rows;
  const body = document.querySelector('#crystals tbody');
  const state = {sortKey: null, descending: false, selected: null, viz: null};
  const api = window.explore = {ready: false, error: null};
  const knownElements = new Set(Object.keys(data.legend));

  function cellText(row, key) {
    const v = row[key];
    if (v === null || v === undefined) return '';
    if (key === 'energy' || key === 'e_hull') return v.toFixed(4);
    if (key === 'spacegroup') return v + ' (' + row.sg_number + ')';
    if (key === 'elements') return v.join(' ');
    return String(v);
  }

  function buildTable() {
    rows.forEach((row, i) => {
      const tr = document.createElement('tr');
      tr.dataset.index = String(i);
      document.querySelectorAll('#crystals thead th').forEach((th) => {
        const td = document.createElement('td');
        td.textContent = cellText(row, th.dataset.key);
        tr.appendChild(td);
      });
      tr.addEventListener('click', () => select(i));
      body.appendChild(tr);
    });
  }

  function matches(row, token) {
    if (knownElements.has(token)) return row.elements.includes(token);
    const t = token.toLowerCase();
    return [row.formula, row.key, row.spacegroup || ''].some((s) => s.toLowerCase().includes(t));
  }

  function applyFilter() {
    const tokens = document.getElementById('filter').value.split(/[\s,]+/).filter(Boolean);
    let shown = 0;
    body.querySelectorAll('tr').forEach((tr) => {
      const ok = tokens.every((t) => matches(rows[Number(tr.dataset.index)], t));
      tr.hidden = !ok;
      shown += ok ? 1 : 0;
    });
    document.getElementById('count').textContent = shown + ' of ' + rows.length + ' crystals';
  }

  function compare(a, b, key) {
    const x = key === 'spacegroup' ? a.sg_number : a[key];
    const y = key === 'spacegroup' ? b.sg_number : b[key];
    if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
    if (y === null || y === undefined) return -1;
    const c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
    return state.descending ? -c : c;
  }

  function sortBy(key) {
    state.descending = state.sortKey === key ? !state.descending : false;
    state.sortKey = key;
    const trs = Array.from(body.querySelectorAll('tr'));
    trs.sort((p, q) => compare(rows[Number(p.dataset.index)], rows[Number(q.dataset.index)], key));
    trs.forEach((tr) => body.appendChild(tr));
    document.querySelectorAll('#crystals thead th').forEach((th) => {
      th.dataset.sorted = th.dataset.key === key ? (state.descending ? 'desc' : 'asc') : '';
    });
  }

  function showLegend(i) {
    const legend = document.getElementById('legend');
    legend.replaceChildren();
    rows[i].elements.forEach((el) => {
      const item = document.createElement('span');
      item.className = 'legend-item';
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = data.legend[el];
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(el));
      item.dataset.element = el;
      legend.appendChild(item);
    });
    document.getElementById('selected-name').textContent = rows[i].formula + ' - ' + rows[i].key;
  }

  function highlight(i) {
    state.selected = i;
    body.querySelectorAll('tr').forEach((tr) => {
      tr.classList.toggle('selected', Number(tr.dataset.index) === i);
    });
    showLegend(i);
  }

  function select(i) {
    highlight(i);
    if (state.viz) state.viz.select({structure: i, environment: i});
  }

  function visibleRows() {
    return Array.from(body.querySelectorAll('tr')).filter((tr) => !tr.hidden).length;
  }

  function chemiscopeData() {
    const dataset = data.dataset;
    Object.values(dataset.properties).forEach((p) => {
      p.values = p.values.map((v) => (v === null ? NaN : v));
    });
    return dataset;
  }

  async function loadViewer() {
    const config = {structure: 'cs-structure', info: 'cs-info', meta: 'cs-meta'};
    let visualizer = Chemiscope.StructureVisualizer;
    if (data.has_energy) {
      config.map = 'cs-map';
      visualizer = Chemiscope.DefaultVisualizer;
    }
    const viz = await visualizer.load(config, chemiscopeData());
    viz.onselect = (indexes) => highlight(indexes.structure);
    state.viz = viz;
  }

  buildTable();
  applyFilter();
  ['input', 'change', 'search'].forEach((event) => {
    document.getElementById('filter').addEventListener(event, applyFilter);
  });
  document.querySelectorAll('#crystals thead th').forEach((th) => {
    th.addEventListener('click', () => sortBy(th.dataset.key));
  });
  Object.assign(api, {visibleRows, select, applyFilter, sortBy});
  highlight(0);
  loadViewer().then(() => { api.ready = true; })
    .catch((e) => { api.error = String(e); console.error(e); });
})();
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1rem; color: #222; }
h1 { font-size: 1.3rem; margin: 0 0 .5rem 0; }
#layout { display: flex; gap: 1rem; align-items: flex-start; }
#table-pane { flex: 1 1 45%; max-height: 85vh; overflow: auto; }
#viewer-pane { flex: 1 1 55%; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .2rem .4rem; text-align: left; }
th { cursor: pointer; position: sticky; top: 0; background: #f4f4f4; user-select: none; }
th[data-sorted="asc"]::after { content: " \\25B2"; }
th[data-sorted="desc"]::after { content: " \\25BC"; }
tr.selected td { background: #dbe9ff; }
tbody tr { cursor: pointer; }
#filter { width: 60%; margin: .3rem 0; padding: .2rem; }
#cs-structure { height: 420px; border: 1px solid #ccc; }
#cs-map { height: 360px; }
#legend { margin: .4rem 0; }
.legend-item { margin-right: .9rem; font-weight: 600; }
.swatch { display: inline-block; width: .9rem; height: .9rem; border-radius: 50%;
          border: 1px solid #555; margin-right: .25rem; vertical-align: middle; }
.note { color: #666; font-size: .8rem; }
"""
