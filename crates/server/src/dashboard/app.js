// The dashboard's script. Everything the page shows comes from parley's own API: the report API
// (numbers, and the charts as SVG drawn by the server), the conversations and OData. What is
// shown is held in the address, so that a view can be bookmarked, shared and reloaded.
'use strict';

(() => {
  const API = '/new/v2.0';
  const ODATA = '/v2.4';
  const VIEWS = ['overview', 'transcripts', 'steps', 'goals', 'agents'];
  const RANGES = { '24h': 1, '7d': 7, '30d': 30, '90d': 90, '365d': 365 };
  const FILTERS = [
    ['channel', 'Channel'],
    ['localeName', 'Locale'],
    ['endpointUrlToken', 'Endpoint'],
    ['snapshotName', 'Snapshot'],
    ['flowName', 'Flow'],
  ];
  const TILES = [
    ['sessions', 'Sessions'],
    ['contacts', 'Contacts'],
    ['inputs', 'Inputs'],
    ['positiveRatings', 'Positive ratings'],
    ['negativeRatings', 'Negative ratings'],
    ['activeSessions', 'Active now'],
  ];
  // The charts of each view: [report, accessible name, extra parameters].
  const CHARTS = {
    overview: [
      ['sessions', 'Sessions over time'],
      ['inputs', 'Inputs over time'],
      ['sessionsByChannel', 'Sessions by channel'],
      ['topIntents', 'Top intents'],
      ['topGoals', 'Top goals'],
      ['topSlots', 'Top slots'],
      ['handoversByHour', 'Handovers by weekday and hour'],
      ['containmentRate', 'Containment rate'],
      ['ratings', 'Ratings'],
      ['sessionLength', 'Session length'],
      ['executionTime', 'Execution time'],
      ['contacts', 'Contacts over time'],
    ],
    goals: [
      ['goals', 'Goals: cycles, time and money'],
      ['topGoals', 'Goals completed by inputs'],
    ],
    agents: [
      ['liveAgent', 'Handovers by status and label'],
      ['handoverRate', 'Handover rate'],
      ['handoversByHour', 'Handovers by weekday and hour'],
    ],
  };
  const AGENT_TILES = [
    ['handovers', 'Handovers', count],
    ['handoverRate', 'Handover rate', percent],
    ['averageFirstResponse', 'First response', duration],
    ['averageResolution', 'Resolution', duration],
  ];
  const GOAL_COLUMNS = [
    ['completed', 'Completed', count],
    ['partial', 'Partial', count],
    ['incomplete', 'Incomplete', count],
    ['timeSaved', 'Time saved', duration],
    ['costSaved', 'Cost saved', money],
    ['revenue', 'Revenue', money],
  ];
  const STORED = 'parley.insights.credentials';
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

  const $ = (selector, root = document) => root.querySelector(selector);

  // An element with attributes (`text` sets its text, `on*` handlers) and children.
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  // Numbers as people read them.
  function count(value) {
    return value === null || value === undefined ? '–' : Math.round(value).toLocaleString('en');
  }
  function percent(value) {
    return value === null || value === undefined ? '–' : `${(value * 100).toFixed(1)} %`;
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
    if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }
  function money(value) {
    return value === null || value === undefined ? '–' : value.toLocaleString('en', { maximumFractionDigits: 2 });
  }

  // ---- Credentials: an API key, or the tokens of a password sign-in, for this tab only ----

  const credentials = {
    read() {
      try {
        return JSON.parse(sessionStorage.getItem(STORED));
      } catch {
        return null;
      }
    },
    keep(value) {
      sessionStorage.setItem(STORED, JSON.stringify(value));
    },
    forget() {
      sessionStorage.removeItem(STORED);
    },
  };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // What an error answer says, in its words: REST problems, OData errors and OAuth2 errors.
  async function reason(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: the status says what there is to say.
    }
    const said = body && (body.detail || (body.error && body.error.message) || body.error_description);
    return said || `The server answered ${response.status} ${response.statusText}.`;
  }

  async function token(form) {
    const response = await fetch('/auth/oauth2/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'default', client_secret: '', ...form }),
    });
    if (!response.ok) throw new ApiError(response.status, await reason(response));
    const answer = await response.json();
    return {
      access: answer.access_token,
      refresh: answer.refresh_token,
      expires: Date.now() + answer.expires_in * 1000,
    };
  }

  let refreshing = null;
  // A new access token from the refresh token, once however many requests ask at the same time.
  function refresh(held) {
    if (!refreshing) {
      refreshing = token({ grant_type: 'refresh_token', refresh_token: held.refresh })
        .then((fresh) => {
          credentials.keep(fresh);
          return fresh;
        })
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  const ENDED = 'Your sign-in has ended; please sign in again.';

  // A fresh access token; when the refresh token is used up or revoked, back to signing in.
  async function renewed(held) {
    try {
      return await refresh(held);
    } catch {
      signedOut(ENDED);
      throw new ApiError(401, ENDED);
    }
  }

  async function authorisation() {
    let held = credentials.read();
    if (!held) throw new ApiError(401, 'You are signed out.');
    if (held.key) return { 'X-API-Key': held.key };
    if (held.expires - Date.now() < 60000) held = await renewed(held);
    return { Authorization: `Bearer ${held.access}` };
  }

  // A request to the API with the credentials; an error answer becomes an ApiError in its words.
  async function call(path, accept = 'application/json', retried = false) {
    const response = await fetch(path, { headers: { Accept: accept, ...(await authorisation()) } });
    if (response.status === 401 && !retried) {
      const held = credentials.read();
      if (held && held.refresh) {
        await renewed(held);
        return call(path, accept, true);
      }
      signedOut(ENDED);
    }
    if (!response.ok) throw new ApiError(response.status, await reason(response));
    return response;
  }
  const json = async (path) => (await call(path)).json();

  // ---- The address: what is shown ----

  function readAddress() {
    const query = new URLSearchParams(location.search);
    const from = query.get('from') || '';
    const to = query.get('to') || '';
    const range = query.get('range') || (from || to ? 'custom' : '7d');
    const filters = {};
    for (const [name] of FILTERS) filters[name] = query.getAll(name).filter((v) => v !== '');
    return {
      view: VIEWS.includes(query.get('view')) ? query.get('view') : 'overview',
      projects: query.getAll('projectId'),
      range: range in RANGES || range === 'custom' ? range : '7d',
      from,
      to,
      timezone: query.get('timezone') || browserZone,
      grain: query.get('grain') || '',
      filters,
      session: query.get('session') || '',
      search: query.get('search') || '',
      page: query.get('page') || '',
      startStep: query.get('startStep') || '',
      endStep: query.get('endStep') || '',
    };
  }

  function address(state) {
    const query = new URLSearchParams();
    if (state.view !== 'overview') query.set('view', state.view);
    for (const project of state.projects) query.append('projectId', project);
    if (state.range === 'custom') {
      if (state.from) query.set('from', state.from);
      if (state.to) query.set('to', state.to);
    } else {
      query.set('range', state.range);
    }
    query.set('timezone', state.timezone);
    if (state.grain) query.set('grain', state.grain);
    for (const [name] of FILTERS) for (const value of state.filters[name]) query.append(name, value);
    if (state.view === 'transcripts') {
      if (state.search) query.set('search', state.search);
      if (state.page) query.set('page', state.page);
      if (state.session) query.set('session', state.session);
    }
    if (state.view === 'steps') {
      if (state.startStep) query.set('startStep', state.startStep);
      if (state.endStep) query.set('endStep', state.endStep);
    }
    return `${location.pathname}?${query}`;
  }

  let state = readAddress();

  // Moves to a new state: into the address (a new history entry unless `replace`), then shown.
  function go(change, replace = false) {
    state = { ...state, ...change };
    const target = address(state);
    if (replace) history.replaceState(null, '', target);
    else if (target !== location.pathname + location.search) history.pushState(null, '', target);
    show();
  }

  // ---- Time: the range as the report API takes it, and instants in the chosen zone ----

  // Whether the browser can compute in the zone (the report API knows every IANA name).
  function knownZone(zone) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone }).format(0);
      return true;
    } catch {
      return false;
    }
  }

  // The calendar date of an instant in a zone, as YYYY-MM-DD.
  function dateIn(instant, zone) {
    return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' })
      .format(instant);
  }
  function addDays(date, days) {
    const day = new Date(`${date}T00:00:00Z`);
    day.setUTCDate(day.getUTCDate() + days);
    return day.toISOString().slice(0, 10);
  }
  // Minutes the zone is ahead of UTC at an instant.
  function offsetAt(instant, zone) {
    const parts = {};
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    for (const part of format.formatToParts(instant)) parts[part.type] = Number(part.value);
    const local = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
    return Math.round((local - Math.floor(instant / 1000) * 1000) / 60000);
  }
  // The instant of a local date-time (YYYY-MM-DD or YYYY-MM-DDTHH:MM) in a zone.
  function instantOf(local, zone) {
    const [date, time = '00:00'] = local.split('T');
    const [y, m, d] = date.split('-').map(Number);
    const [hh, mm] = time.split(':').map(Number);
    const guess = Date.UTC(y, m - 1, d, hh, mm);
    let instant = guess - offsetAt(guess, zone) * 60000;
    const second = guess - offsetAt(instant, zone) * 60000;
    if (second !== instant) instant = second;
    return new Date(instant);
  }

  // `from` and `to` as the report API takes them: local dates for whole days (the API places
  // them in the zone), instants for the last 24 hours, as typed for a custom range.
  function bounds() {
    if (state.range === 'custom') return [state.from, state.to];
    const now = new Date();
    if (state.range === '24h') {
      const minute = Math.floor(now.getTime() / 60000) * 60000;
      return [new Date(minute - 86400000).toISOString(), new Date(minute + 60000).toISOString()];
    }
    const today = dateIn(now, state.timezone);
    return [addDays(today, 1 - RANGES[state.range]), today];
  }

  // The same range as instants, for the reads that take only instants (the conversations).
  function instants() {
    const [from, to] = bounds();
    const instant = (text, end) => {
      if (!text) return '';
      if (/[zZ]$|[+-]\d\d:\d\d$/.test(text)) return new Date(text).toISOString();
      if (/^\d{4}-\d\d-\d\d$/.test(text)) return instantOf(end ? addDays(text, 1) : text, state.timezone).toISOString();
      return instantOf(text, state.timezone).toISOString();
    };
    return [instant(from, false), instant(to, true)];
  }

  // The report API's query for the current state over `projects` (those picked, by default), one
  // series per project when there are several.
  function reportQuery(extra = {}, projects = state.projects) {
    const query = new URLSearchParams();
    for (const project of projects) query.append('projectId', project);
    if (projects.length > 1) query.set('compare', 'project');
    const [from, to] = bounds();
    if (from) query.set('from', from);
    if (to) query.set('to', to);
    query.set('timezone', state.timezone);
    if (state.grain) query.set('grain', state.grain);
    for (const [name] of FILTERS) for (const value of state.filters[name]) query.append(name, value);
    for (const [name, value] of Object.entries(extra)) if (value) query.set(name, value);
    return query.toString();
  }
  const reportPath = (report, extra, projects) => `${API}/insights/${report}?${reportQuery(extra, projects)}`;

  // ---- Loading: a few requests at a time, the newest view winning ----

  let generation = 0;
  let running = 0;
  const waiting = [];
  function limited(task) {
    return new Promise((resolve, reject) => {
      const start = () => {
        running += 1;
        task().then(resolve, reject).finally(() => {
          running -= 1;
          if (waiting.length) waiting.shift()();
        });
      };
      if (running < 4) start();
      else waiting.push(start);
    });
  }

  function noteAsOf(value) {
    if (!value) return;
    const time = new Date(value);
    $('#as-of').textContent = `Data as of ${time.toLocaleTimeString('en-GB', { timeZone: state.timezone })}`;
    $('#as-of').dataset.asOf = value;
  }

  // An error in words, in place of what could not be shown; `what` names that.
  function failure(error, what) {
    const said = error.message || String(error);
    return el('p', { class: 'error', role: 'alert', text: what ? `${what}: ${said}` : said });
  }

  function projectName(id) {
    const project = projects.find((p) => p._id === id);
    return project ? project.name : id;
  }

  // ---- Downloads ----

  async function download(path, accept, name) {
    const blob = await (await call(path, accept)).blob();
    const link = el('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  // A chart drawn by the server, with its downloads; errors are said in words in its place.
  function chart(report, title, extra) {
    const figure = el('figure', { class: 'chart', 'data-report': report, 'aria-label': title, 'aria-busy': 'true' });
    const body = el('div', { class: 'drawing' }, el('p', { class: 'loading', text: `Loading ${title.toLowerCase()}…` }));
    const path = reportPath(report, extra);
    figure.dataset.query = path;
    const action = (label, accept, extension) =>
      el('button', {
        type: 'button',
        class: 'quiet',
        text: label,
        'aria-label': `Download ${title} as ${label}`,
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          try {
            await download(path, accept, `${report}.${extension}`);
          } catch (error) {
            body.append(failure(error, title));
          } finally {
            button.disabled = false;
          }
        },
      });
    figure.append(body, el('figcaption', {}, action('CSV', 'text/csv', 'csv'), action('PNG', 'image/png', 'png')));
    const mine = generation;
    limited(async () => {
      if (mine !== generation) return;
      try {
        const svg = await (await call(path, 'image/svg+xml')).text();
        if (mine !== generation) return;
        body.innerHTML = svg;
        const drawing = body.querySelector('svg');
        if (drawing) {
          drawing.setAttribute('role', 'img');
          drawing.setAttribute('aria-label', title);
        }
      } catch (error) {
        body.replaceChildren(failure(error, title));
      } finally {
        figure.setAttribute('aria-busy', 'false');
      }
    });
    return figure;
  }

  // Tiles: one row per project when several are compared.
  function tiles(items, which, label) {
    const groups = new Map();
    for (const item of items) {
      const key = item.projectId || '';
      if (!groups.has(key)) groups.set(key, new Map());
      groups.get(key).set(item.measure, item.value);
    }
    const rows = [];
    for (const [project, values] of groups) {
      rows.push(
        el(
          'div',
          { class: 'tiles', 'aria-label': project ? projectName(project) : label, 'data-project': project || null },
          project ? el('h3', { class: 'series', text: projectName(project) }) : null,
          which.map(([measure, name, shown = count]) =>
            el(
              'div',
              { class: 'tile', 'data-measure': measure },
              el('span', { class: 'name', text: name }),
              el('span', { class: 'value', 'data-value': values.get(measure) ?? '', text: shown(values.get(measure)) }),
            ),
          ),
        ),
      );
    }
    return el('section', { class: 'tile-rows', 'aria-label': label }, rows);
  }

  // ---- The views ----

  // Whether any of the shown projects holds a record at all, for the empty state.
  async function holdsAnything() {
    for (const project of state.projects) {
      const page = await json(`${API}/analytics?projectId=${encodeURIComponent(project)}&limit=1`);
      if (page.items.length) return true;
    }
    return false;
  }

  function empty() {
    return el(
      'div',
      { class: 'empty card', role: 'status' },
      el('h2', { text: 'No data yet' }),
      el('p', {}, 'This project has not received any records. To see the dashboard at work, run ',
        el('code', { text: 'parley demo' }),
        ' on the server for a year of generated conversations, or send your bot\'s records to ',
        el('code', { text: 'POST /new/v2.0/analytics/records' }), ' as the ',
        el('a', { href: '/reference', text: 'API reference' }), ' shows.'),
    );
  }

  // A part of a view filled from one report: busy while it loads, its question kept in
  // `data-query`, and a failure said in its place.
  function slot(kind, path, fill, mine) {
    const node = el('div', { class: kind, 'aria-busy': 'true', 'data-query': path });
    (async () => {
      try {
        const answer = await json(path);
        if (mine !== generation) return;
        noteAsOf(answer.asOf);
        await fill(node, answer);
      } catch (error) {
        node.replaceChildren(failure(error));
      } finally {
        node.setAttribute('aria-busy', 'false');
      }
    })();
    return node;
  }

  const charts = (list) => el('div', { class: 'charts' }, list.map(([report, title]) => chart(report, title)));

  function overview(view, mine) {
    const head = slot('tile-slot', reportPath('overview'), async (node, answer) => {
      node.replaceChildren(tiles(answer.items, TILES, 'Headline numbers'));
      const nothing = answer.items.every((item) => !item.value);
      if (nothing && !(await holdsAnything()) && mine === generation) view.replaceChildren(empty());
    }, mine);
    view.append(head, charts(CHARTS.overview));
  }

  function goals(view, mine) {
    const compared = state.projects.length > 1;
    const table = slot('table-slot', reportPath('goals'), (node, answer) => {
      const rows = new Map();
      for (const item of answer.items) {
        const key = `${item.projectId || ''}\u0000${item.dimension}`;
        if (!rows.has(key)) rows.set(key, { project: item.projectId, goal: item.dimension, values: {} });
        rows.get(key).values[item.measure] = item.value;
      }
      if (rows.size === 0) {
        node.replaceChildren(el('p', { class: 'note', text: 'No goal was reached in this range.' }));
        return;
      }
      node.replaceChildren(el('table', { class: 'data', 'aria-label': 'Goals' },
        el('thead', {}, el('tr', {}, compared ? el('th', { text: 'Project' }) : null, el('th', { text: 'Goal' }),
          GOAL_COLUMNS.map(([, name]) => el('th', { class: 'number', text: name })))),
        el('tbody', {}, [...rows.values()].map((row) =>
          el('tr', { 'data-goal': row.goal },
            compared ? el('td', { text: projectName(row.project) }) : null,
            el('th', { scope: 'row', text: row.goal }),
            GOAL_COLUMNS.map(([measure, , shown]) => el('td', {
              class: 'number', 'data-measure': measure, 'data-value': row.values[measure] ?? '', text: shown(row.values[measure]),
            })))))));
    }, mine);
    view.append(table, charts(CHARTS.goals));
  }

  function agents(view, mine) {
    const head = slot('tile-slot', reportPath('liveAgent'), (node, answer) => {
      node.replaceChildren(tiles(answer.items.filter((i) => i.dimension === 'all'), AGENT_TILES, 'Live agent'));
    }, mine);
    view.append(head, charts(CHARTS.agents));
  }

  // The project a one-project view (transcripts, steps) reads: the first one picked.
  function soleProject(view) {
    if (state.projects.length > 1) {
      view.append(el('p', { class: 'note', text: `Showing ${projectName(state.projects[0])}, the first of the projects picked.` }));
    }
    return state.projects[0];
  }

  async function transcripts(view, mine) {
    const project = soleProject(view);
    const search = el('form', { class: 'search', role: 'search', onsubmit: (event) => {
      event.preventDefault();
      go({ search: new FormData(event.target).get('search').trim(), page: '', session: '' });
    } },
    el('label', {}, 'Words in a message ', el('input', { name: 'search', type: 'search', value: state.search })),
    el('button', { type: 'submit', text: 'Search' }));
    const list = el('div', { class: 'sessions', 'aria-busy': 'true' });
    const reader = el('div', { class: 'reader' });
    view.append(search, el('div', { class: 'split' }, list, reader));
    const query = new URLSearchParams({ projectId: project, limit: '20' });
    const [from, to] = instants();
    if (from) query.set('from', from);
    if (to) query.set('to', to);
    // The index filters by one channel; other filters are the reports' and do not apply here.
    const channels = state.filters.channel;
    if (channels.length === 1 && !channels[0].startsWith('!')) query.set('channel', channels[0]);
    else if (channels.length) view.prepend(el('p', { class: 'note', text: 'The list below is filtered by one channel only; the channel filter is left out.' }));
    if (state.search) query.set('search', state.search);
    if (state.page) query.set(state.page.split(':')[0], state.page.slice(state.page.indexOf(':') + 1));
    const path = `${API}/conversations?${query}`;
    list.dataset.query = path;
    try {
      const page = await json(path);
      if (mine !== generation) return;
      const link = (session) => {
        const target = address({ ...state, session: session.sessionId });
        return el('a', { href: target, 'data-session': session.sessionId, 'aria-current': session.sessionId === state.session ? 'true' : null, onclick: (event) => {
          event.preventDefault();
          go({ session: session.sessionId });
        } },
        el('span', { class: 'contact', text: session.contactId }),
        el('span', { class: 'meta', text: `${session.channel || 'no channel'} · ${session.messages} messages · ${new Date(session.endTime).toLocaleString('en-GB', { timeZone: state.timezone })}` }));
      };
      const pager = el('nav', { class: 'pager', 'aria-label': 'Pages' },
        el('span', { class: 'total', text: `${count(page.total)} sessions` }),
        page.previousCursor ? el('button', { type: 'button', class: 'quiet', text: '← Newer', onclick: () => go({ page: `previous:${page.previousCursor}`, session: '' }) }) : null,
        page.nextCursor ? el('button', { type: 'button', class: 'quiet', text: 'Older →', onclick: () => go({ page: `next:${page.nextCursor}`, session: '' }) }) : null);
      list.replaceChildren(
        page.items.length ? el('ol', {}, page.items.map((s) => el('li', {}, link(s)))) : el('p', { class: 'note', text: 'No conversation in this range matches.' }),
        pager,
      );
    } catch (error) {
      list.replaceChildren(failure(error));
    } finally {
      list.setAttribute('aria-busy', 'false');
    }
    if (state.session) await conversation(reader, project, state.session, mine);
    else reader.append(el('p', { class: 'note', text: 'Pick a session to read its conversation.' }));
  }

  const SPEAKERS = { user: 'User', bot: 'Bot', agent: 'Agent' };

  async function conversation(reader, project, session, mine) {
    reader.setAttribute('aria-busy', 'true');
    const path = `${API}/conversations/${encodeURIComponent(session)}?projectId=${encodeURIComponent(project)}&expertMode=true`;
    reader.dataset.query = path;
    try {
      const answer = await json(path);
      if (mine !== generation) return;
      const expert = (message) => {
        if (message.type !== 'input' || message.intent === undefined) return null;
        const facts = [
          ['Intent', message.intent ?? '–'],
          ['Score', message.intentScore === null || message.intentScore === undefined ? '–' : message.intentScore.toFixed(2)],
          ['Understood', message.understood === null || message.understood === undefined ? '–' : message.understood ? 'yes' : 'no'],
          ['Slots', message.slots ? JSON.stringify(message.slots) : '–'],
        ];
        return el('details', { class: 'expert' }, el('summary', { text: 'Details' }),
          el('dl', {}, facts.map(([name, value]) => [el('dt', { text: name }), el('dd', { text: String(value) })])));
      };
      reader.replaceChildren(
        el('h2', { text: `Session ${session}` }),
        el('ol', { class: 'conversation' }, answer.items.map((message) => {
          const speaker = SPEAKERS[message.source] ? message.source : 'bot';
          return el('li', { class: `message ${speaker}`, 'data-source': message.source },
            el('span', { class: 'speaker', text: SPEAKERS[speaker] }),
            el('p', { class: 'text', text: message.inputText ?? (message.inputData ? JSON.stringify(message.inputData) : '(no text)') }),
            el('time', { datetime: message.timestamp, text: new Date(message.timestamp).toLocaleString('en-GB', { timeZone: state.timezone }) }),
            expert(message));
        })),
      );
    } catch (error) {
      reader.replaceChildren(failure(error));
    } finally {
      reader.setAttribute('aria-busy', 'false');
    }
  }

  async function steps(view, mine) {
    const project = soleProject(view);
    const catalogue = el('datalist', { id: 'step-names' });
    const form = el('form', { class: 'step-form', onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      const step = data.get('step').trim();
      go(data.get('direction') === 'end' ? { startStep: '', endStep: step } : { startStep: step, endStep: '' });
    } },
    el('label', {}, 'Direction ', el('select', { name: 'direction' },
      el('option', { value: 'start', text: 'Forward from', selected: !state.endStep }),
      el('option', { value: 'end', text: 'Back from', selected: !!state.endStep }))),
    el('label', {}, 'Step ', el('input', { name: 'step', list: 'step-names', required: true, value: state.endStep || state.startStep, autocomplete: 'off' })),
    el('button', { type: 'submit', text: 'Show the funnel' }), catalogue);
    const funnel = el('div', { class: 'funnel', 'aria-busy': 'true' });
    const behind = el('div', { class: 'behind' });
    view.append(form, funnel, behind);
    // The steps the project ran, most frequent first, to pick from.
    const names = new URLSearchParams({
      $apply: `filter(projectId eq '${project.replaceAll("'", "''")}')/groupby((entityReferenceId,stepLabel),aggregate($count as runs))`,
      $orderby: 'runs desc',
      $top: '200',
    });
    json(`${ODATA}/ExecutedSteps?${names}`).then((answer) => {
      catalogue.replaceChildren(...answer.value.map((s) => el('option', { value: s.entityReferenceId, text: s.stepLabel || s.entityReferenceId })));
      if (!state.startStep && !state.endStep && answer.value.length && mine === generation) {
        go({ startStep: answer.value[0].entityReferenceId }, true);
      }
    }).catch((error) => funnel.replaceChildren(failure(error)));
    if (!state.startStep && !state.endStep) {
      funnel.replaceChildren(el('p', { class: 'note', text: 'Pick a step to see where sessions go from it.' }));
      funnel.setAttribute('aria-busy', 'false');
      return;
    }
    // The funnel of the one project whose steps are offered, as the note above it says.
    const path = reportPath('steps', { startStep: state.startStep, endStep: state.endStep }, [project]);
    funnel.dataset.query = path;
    try {
      const answer = await json(path);
      if (mine !== generation) return;
      noteAsOf(answer.asOf);
      const nodes = new Map();
      for (const item of answer.items) {
        if (!nodes.has(item.dimension)) nodes.set(item.dimension, { path: item.dimension, link: null });
        const node = nodes.get(item.dimension);
        node[item.measure] = item.value;
        if (item._links && item._links.sessions) node.link = item._links.sessions.href;
      }
      const top = Math.max(1, ...[...nodes.values()].map((n) => n.sessions || 0));
      funnel.replaceChildren(
        nodes.size === 0 ? el('p', { class: 'note', text: 'No session ran this step in this range.' }) :
          el('table', { class: 'data funnel-table', 'aria-label': 'Step funnel' },
            el('thead', {}, el('tr', {}, el('th', { text: 'Path' }), el('th', { class: 'number', text: 'Sessions' }),
              el('th', { class: 'number', text: 'Drop-off' }), el('th', { text: '' }))),
            el('tbody', {}, [...nodes.values()].map((node) => {
              const depth = node.path.split(' > ').length - 1;
              const bar = el('span', { class: 'bar' });
              bar.style.width = `${(100 * (node.sessions || 0)) / top}%`;
              const cell = el('th', { scope: 'row', class: 'path' }, el('span', { class: 'step', text: node.path.split(' > ').pop() }), bar);
              cell.style.paddingLeft = `${0.5 + depth * 1.25}rem`;
              return el('tr', { 'data-path': node.path }, cell,
                el('td', { class: 'number', 'data-measure': 'sessions', text: count(node.sessions) }),
                el('td', { class: 'number', 'data-measure': 'dropOff', text: count(node.dropOff) }),
                el('td', {}, node.link ? el('button', { type: 'button', class: 'quiet', text: 'Sessions', 'aria-label': `Sessions behind ${node.path}`, onclick: () => sessionsBehind(behind, node, project) }) : null));
            }))),
      );
    } catch (error) {
      funnel.replaceChildren(failure(error));
    } finally {
      funnel.setAttribute('aria-busy', 'false');
    }
  }

  async function sessionsBehind(behind, node, project) {
    behind.setAttribute('aria-busy', 'true');
    behind.replaceChildren(el('p', { class: 'loading', text: 'Loading the sessions…' }));
    try {
      const answer = await json(`${node.link}&$select=sessionId,contactId,startedAt,channel,stepPath&$orderby=startedAt desc&$top=50`);
      behind.replaceChildren(
        el('h2', { text: `Sessions through ${node.path}` }),
        el('ul', { class: 'session-links' }, answer.value.map((session) =>
          el('li', {}, el('a', {
            href: address({ ...state, view: 'transcripts', session: session.sessionId, projects: [project] }),
            'data-session': session.sessionId,
          }, `${session.contactId} · ${new Date(session.startedAt).toLocaleString('en-GB', { timeZone: state.timezone })}`)))),
      );
    } catch (error) {
      behind.replaceChildren(failure(error));
    } finally {
      behind.setAttribute('aria-busy', 'false');
    }
  }

  const RENDER = { overview, transcripts, steps, goals, agents };

  // ---- The filter form, kept in step with the state ----

  let projects = [];

  function drawFilters() {
    const form = $('#filters');
    $('#project-list').replaceChildren(...projects.map((project) =>
      el('label', { class: 'check' }, el('input', {
        type: 'checkbox', name: 'projectId', value: project._id, checked: state.projects.includes(project._id),
      }), ` ${project.name}`)));
    form.elements.range.value = state.range;
    const [from, to] = state.range === 'custom' ? [state.from, state.to] : ['', ''];
    form.elements.from.value = from.length === 10 ? `${from}T00:00` : from.slice(0, 16);
    form.elements.to.value = to.length === 10 ? `${to}T00:00` : to.slice(0, 16);
    for (const node of form.querySelectorAll('.custom')) node.hidden = state.range !== 'custom';
    form.elements.timezone.value = state.timezone;
    form.elements.grain.value = state.grain;
    let active = 0;
    for (const [name] of FILTERS) {
      const values = state.filters[name];
      const negated = values.length > 0 && values.every((v) => v.startsWith('!'));
      form.elements[`${name}-mode`].value = negated ? 'not' : 'is';
      form.elements[name].value = values.map((v) => (negated ? v.slice(1) : v)).join(', ');
      active += values.length ? 1 : 0;
    }
    $('#filter-count').textContent = active ? `(${active})` : '';
    if (active) $('#more-filters').open = true;
    for (const link of document.querySelectorAll('#views a')) {
      link.href = address({ ...state, view: link.dataset.view, session: '', page: '' });
      if (link.dataset.view === state.view) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  function buildFilterInputs() {
    $('#filter-grid').replaceChildren(...FILTERS.map(([name, label]) =>
      el('div', { class: 'filter' },
        el('label', { for: `filter-${name}`, text: label }),
        el('select', { name: `${name}-mode`, 'aria-label': `${label}: is or is not` },
          el('option', { value: 'is', text: 'is' }), el('option', { value: 'not', text: 'is not' })),
        el('input', { id: `filter-${name}`, name, autocomplete: 'off', spellcheck: 'false', placeholder: 'any' }))));
    const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
    $('#zones').replaceChildren(...['UTC', ...zones].map((zone) => el('option', { value: zone })));
  }

  // The state the form says, after any change in it.
  function fromForm() {
    const form = $('#filters');
    const data = new FormData(form);
    const filters = {};
    for (const [name] of FILTERS) {
      const not = data.get(`${name}-mode`) === 'not';
      filters[name] = String(data.get(name) || '').split(',').map((v) => v.trim()).filter(Boolean)
        .map((v) => (not && !v.startsWith('!') ? `!${v}` : v));
    }
    const range = data.get('range');
    const change = {
      projects: data.getAll('projectId'),
      range,
      timezone: String(data.get('timezone') || '').trim() || browserZone,
      grain: data.get('grain'),
      filters,
      page: '',
      session: '',
    };
    if (range === 'custom') {
      // Entering the custom range starts from what was shown.
      let [from, to] = [data.get('from'), data.get('to')];
      if (!from || !to) {
        const [shownFrom, shownTo] = bounds();
        from = from || (shownFrom.length === 10 ? `${shownFrom}T00:00` : shownFrom.slice(0, 16));
        to = to || (shownTo.length === 10 ? `${addDays(shownTo, 1)}T00:00` : shownTo.slice(0, 16));
      }
      change.from = from;
      change.to = to;
    }
    return change;
  }

  // ---- Showing the state ----

  function show() {
    generation += 1;
    const mine = generation;
    waiting.length = 0;
    drawFilters();
    const view = $('#view');
    view.replaceChildren();
    view.dataset.view = state.view;
    $('#board-error').hidden = true;
    if (!projects.length) {
      view.append(el('div', { class: 'empty card', role: 'status' }, el('h2', { text: 'No project to show' }),
        el('p', { text: 'This sign-in may read no project. Ask an administrator to make you a member of one, or create one through the API.' })));
      return;
    }
    if (!state.projects.length) {
      view.append(el('p', { class: 'note', role: 'status', text: 'Pick at least one project.' }));
      return;
    }
    if (!knownZone(state.timezone)) {
      view.append(failure(new Error(`'${state.timezone}' is not a time zone this browser knows; pick one from the list, such as Europe/Berlin or UTC.`)));
      return;
    }
    document.title = `${state.projects.map(projectName).join(', ')} · parley insights`;
    RENDER[state.view](view, mine);
  }

  async function start() {
    const held = credentials.read();
    $('#sign-in').hidden = !!held;
    $('#board').hidden = !held;
    $('#views').hidden = !held;
    $('#who').hidden = !held;
    if (!held) {
      $('#password-form').elements.username.focus();
      return;
    }
    try {
      const answer = await json(`${API}/projects?limit=100`);
      projects = answer.items || [];
    } catch (error) {
      if (!credentials.read()) return;
      $('#board-error').textContent = error.message;
      $('#board-error').hidden = false;
      return;
    }
    // Projects named in the address that this sign-in cannot read are dropped, with a word.
    const readable = state.projects.filter((id) => projects.some((p) => p._id === id));
    const dropped = readable.length < state.projects.length;
    go({ projects: readable.length || !projects.length ? readable : [projects[0]._id] }, true);
    if (dropped) {
      $('#board-error').textContent = 'A project in the address is not one this sign-in may read; it is left out.';
      $('#board-error').hidden = false;
    }
  }

  function signedOut(message) {
    credentials.forget();
    projects = [];
    generation += 1;
    $('#view').replaceChildren();
    $('#as-of').textContent = '';
    const shown = $('#sign-in-error');
    shown.textContent = message || '';
    shown.hidden = !message;
    start();
  }

  async function signOut() {
    const held = credentials.read();
    if (held && held.refresh) {
      // Revoking the refresh token ends the whole sign-in, its access tokens too.
      await fetch('/auth/oauth2/revoke', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: held.refresh, client_id: 'default' }),
      }).catch(() => {});
    }
    signedOut('');
  }

  async function signIn(event, how) {
    event.preventDefault();
    const form = event.target;
    const button = form.querySelector('button');
    button.disabled = true;
    $('#sign-in-error').hidden = true;
    try {
      if (how === 'key') {
        const key = form.elements.key.value.trim();
        const response = await fetch(`${API}/projects?limit=1`, { headers: { Accept: 'application/json', 'X-API-Key': key } });
        if (!response.ok) throw new ApiError(response.status, await reason(response));
        credentials.keep({ key });
      } else {
        credentials.keep(await token({
          grant_type: 'password', username: form.elements.username.value.trim(), password: form.elements.password.value,
        }));
      }
      form.reset();
      await start();
    } catch (error) {
      $('#sign-in-error').textContent = error.message;
      $('#sign-in-error').hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    buildFilterInputs();
    $('#password-form').addEventListener('submit', (event) => signIn(event, 'password'));
    $('#key-form').addEventListener('submit', (event) => signIn(event, 'key'));
    $('#sign-out').addEventListener('click', signOut);
    $('#filters').addEventListener('change', (event) => {
      // A typed value counts once it is complete: on change, which also fires on Enter.
      if (event.target.name === 'from' || event.target.name === 'to') {
        const form = $('#filters');
        if (!form.elements.from.value || !form.elements.to.value) return;
      }
      go(fromForm());
    });
    $('#filters').addEventListener('submit', (event) => {
      event.preventDefault();
      go(fromForm());
    });
    $('#views').addEventListener('click', (event) => {
      const link = event.target.closest('a[data-view]');
      if (!link) return;
      event.preventDefault();
      go({ view: link.dataset.view, session: '', page: '' });
      $('#main').focus();
    });
    window.addEventListener('popstate', () => {
      state = readAddress();
      show();
    });
    fetch('/version').then((r) => r.json()).then((v) => {
      $('#version').textContent = `parley ${v.version} · ${v.engine}`;
    }).catch(() => {});
    start();
  });
})();
