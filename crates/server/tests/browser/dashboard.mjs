// The dashboard in Debian's chromium, headless, against a running parley with generated data.
// Driven by crates/server/tests/api/dashboard.rs, which starts the server, fills it with
// `parley demo` and passes what this script needs in the environment:
//   PARLEY_URL, PARLEY_KEY, PARLEY_EMAIL, PARLEY_PASSWORD, PARLEY_EMPTY_PROJECT, PARLEY_SHOTS.
// Every number the page shows is compared with the report API asked the same question; no request
// may fail and nothing may be logged to the console, except the failures a step provokes itself.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const BASE = process.env.PARLEY_URL;
const KEY = process.env.PARLEY_KEY;
const EMAIL = process.env.PARLEY_EMAIL;
const PASSWORD = process.env.PARLEY_PASSWORD;
const EMPTY = process.env.PARLEY_EMPTY_PROJECT;
const SHOTS = process.env.PARLEY_SHOTS;
const MEMBER = {
  email: process.env.PARLEY_MEMBER_EMAIL, password: process.env.PARLEY_MEMBER_PASSWORD, project: process.env.PARLEY_MEMBER_PROJECT,
};
const ZONE = 'Asia/Kolkata';
mkdirSync(SHOTS, { recursive: true });

// ---- The API, asked directly ----

async function api(path, accept = 'application/json', headers = { 'X-API-Key': KEY }) {
  const response = await fetch(BASE + path, { headers: { Accept: accept, ...headers } });
  const body = accept === 'application/json' ? await response.json() : await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

// ---- What the browser does that it should not ----

const problems = [];
let expected = []; // [status, address part] a step provokes on purpose
function expect(status, part) {
  expected.push([status, part]);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({
  viewport: { width: 1280, height: 800 }, timezoneId: ZONE, locale: 'en-GB', acceptDownloads: true,
});
const page = await context.newPage();
page.on('console', (message) => {
  // A refused request is logged by the browser itself; it is judged by its answer below.
  const refusal = /Failed to load resource: the server responded with a status of (\d+)/.exec(message.text());
  if (refusal && expected.some(([status]) => status === Number(refusal[1]))) return;
  problems.push(`console ${message.type()}: ${message.text()}`);
});
page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
page.on('requestfailed', (request) => {
  // A download's blob address and a view left before its charts came are not failures.
  const failure = request.failure()?.errorText || '';
  if (request.url().startsWith('blob:') || failure.includes('ERR_ABORTED')) return;
  problems.push(`request failed: ${request.url()} ${failure}`);
});
page.on('response', (response) => {
  if (response.status() < 400) return;
  const url = response.url();
  if (expected.some(([status, part]) => status === response.status() && url.includes(part))) return;
  problems.push(`answer ${response.status()}: ${response.request().method()} ${url}`);
});
const tokenRequests = [];
page.on('request', (request) => {
  if (request.url().endsWith('/auth/oauth2/token')) tokenRequests.push(request.postData() || '');
});

const step = (name) => console.log(`step: ${name}`);

const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`) });
const query = () => new URL(page.url()).searchParams;

// Waits until the view has drawn everything it asked for.
async function settled() {
  await page.waitForFunction(() => {
    const view = document.querySelector('#view');
    return view && view.children.length > 0 && !view.querySelector('[aria-busy="true"]');
  }, null, { timeout: 30000 });
}

// The tiles shown, by project ('' without compare) and measure.
async function shownTiles() {
  return page.evaluate(() => {
    const shown = {};
    for (const row of document.querySelectorAll('.tiles')) {
      const project = row.dataset.project || '';
      shown[project] = {};
      for (const tile of row.querySelectorAll('.tile')) {
        const value = tile.querySelector('.value').dataset.value;
        shown[project][tile.dataset.measure] = value === '' ? null : Number(value);
      }
    }
    return shown;
  });
}

// The tiles equal the report the page asked for, asked again; and that question is the address's.
async function tilesAgree(what, skip = ['activeSessions']) {
  step(what);
  await settled();
  const path = await page.locator('.tile-slot').getAttribute('data-query');
  const asked = new URL(path, BASE).searchParams;
  const address = query();
  assert.deepEqual(asked.getAll('projectId'), address.getAll('projectId'), `${what}: projects`);
  assert.equal(asked.get('timezone'), address.get('timezone'), `${what}: zone`);
  for (const name of ['grain', 'channel', 'localeName', 'endpointUrlToken', 'snapshotName', 'flowName']) {
    assert.deepEqual(asked.getAll(name), address.getAll(name), `${what}: ${name}`);
  }
  if (address.get('from')) assert.equal(asked.get('from'), address.get('from'), `${what}: from`);
  const answer = await api(path);
  const want = {};
  for (const item of answer.items) {
    const project = asked.getAll('projectId').length > 1 ? item.projectId : '';
    want[project] ??= {};
    want[project][item.measure] = item.value;
  }
  const shown = await shownTiles();
  assert.deepEqual(Object.keys(shown).sort(), Object.keys(want).sort(), `${what}: the series`);
  for (const [project, measures] of Object.entries(want)) {
    for (const [measure, value] of Object.entries(measures)) {
      if (skip.includes(measure)) continue;
      assert.equal(shown[project][measure], value, `${what}: ${measure} of '${project}'`);
    }
  }
  // Every chart is drawn, none says it failed.
  const charts = await page.locator('#view figure.chart').count();
  const drawn = await page.locator('#view figure.chart svg').count();
  assert.equal(drawn, charts, `${what}: every chart drawn`);
  assert.equal(await page.locator('#view .error').count(), 0, `${what}: no error shown`);
  return answer;
}

async function changeFilter(action, what) {
  const before = page.url();
  await action();
  await page.waitForFunction((url) => location.href !== url, before);
  return tilesAgree(what);
}

async function openFilters() {
  if (!(await page.locator('#more-filters').evaluate((d) => d.open))) await page.locator('#more-filters summary').click();
}

// The checks, in the order a person would make them.
async function run() {
// ---- Signing in ----
step('Signing in');

await page.goto(`${BASE}/insights`);
await page.locator('#sign-in').waitFor();
await shot('sign-in');

expect(400, '/auth/oauth2/token');
await page.fill('#password-form input[name=username]', EMAIL);
await page.fill('#password-form input[name=password]', 'not the password');
await page.click('#password-form button');
await page.locator('#sign-in-error').waitFor();
const refused = await page.locator('#sign-in-error').textContent();
assert.match(refused, /password|credentials|invalid/i, `a refused sign-in says why: ${refused}`);
expected = [];

await page.fill('#password-form input[name=password]', PASSWORD);
await page.click('#password-form button');
await page.locator('#board').waitFor();
await settled();

// The default view: the first project, the last 7 days, the browser's zone.
const projects = (await api('/new/v2.0/projects?limit=100')).items;
const withData = projects.filter((p) => p._id !== EMPTY);
assert.equal(query().get('range'), '7d');
// The browser names its zone as its time zone database does (Asia/Kolkata may be Asia/Calcutta).
const browserZone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
assert.ok([ZONE, 'Asia/Calcutta'].includes(browserZone), browserZone);
assert.equal(query().get('timezone'), browserZone);
assert.deepEqual(query().getAll('projectId'), [projects[0]._id]);
const first = await tilesAgree('default view');
assert.ok(first.items.find((i) => i.measure === 'sessions').value > 0, 'the demo shows sessions in the last week');
assert.match(await page.locator('#as-of').textContent(), /^Data as of \d\d:\d\d:\d\d$/);
await shot('overview');

// ---- Each filter, in the address and in the numbers ----
step('Each filter, in the address and in the numbers');

if (projects[0]._id !== withData[0]._id) {
  await changeFilter(() => page.uncheck(`input[name=projectId][value="${projects[0]._id}"]`).then(() =>
    page.check(`input[name=projectId][value="${withData[0]._id}"]`)), 'a project with data');
}
await changeFilter(() => page.selectOption('select[name=range]', '30d'), 'last 30 days');
assert.equal(query().get('range'), '30d');
await changeFilter(async () => {
  await page.fill('input[name=timezone]', 'America/St_Johns');
  await page.press('input[name=timezone]', 'Enter');
}, 'another zone');
assert.equal(query().get('timezone'), 'America/St_Johns');
await changeFilter(() => page.selectOption('select[name=grain]', 'day'), 'grain');
assert.equal(query().get('grain'), 'day');
assert.match(await page.locator('figure[data-report=sessions]').getAttribute('data-query'), /grain=day/);

// Values that exist in the data, from the reports themselves.
const base = `projectId=${withData[0]._id}&from=${encodeURIComponent(new Date(Date.now() - 30 * 864e5).toISOString())}`;
const channels = (await api(`/new/v2.0/insights/sessionsByChannel?${base}`)).items.map((i) => i.dimension).filter(Boolean);
const locales = (await api(`/new/v2.0/insights/contactsByLocale?${base}`)).items.map((i) => i.dimension).filter(Boolean);
const sessionRows = (await api(`/v2.4/Sessions?$filter=projectId eq '${withData[0]._id}'&$top=200&$select=endpointUrlToken,snapshotName`)).value;
const records = (await api(`/v2.4/Analytics?$filter=projectId eq '${withData[0]._id}'&$top=200&$select=flowName`)).value;
const endpoint = sessionRows.map((s) => s.endpointUrlToken).find(Boolean);
const snapshot = sessionRows.map((s) => s.snapshotName).find(Boolean);
const flow = records.map((r) => r.flowName).find(Boolean);
assert.ok(channels.length >= 2 && locales.length >= 1 && endpoint && snapshot && flow, 'the demo fills every filter');

await openFilters();
const filterSteps = [
  ['channel', channels[0]], ['localeName', locales[0]], ['endpointUrlToken', endpoint], ['snapshotName', snapshot], ['flowName', flow],
];
for (const [name, value] of filterSteps) {
  await changeFilter(async () => {
    await page.fill(`#filter-${name}`, value);
    await page.press(`#filter-${name}`, 'Enter');
  }, `${name} is ${value}`);
  assert.deepEqual(query().getAll(name), [value]);
  await changeFilter(() => page.selectOption(`select[name="${name}-mode"]`, 'not'), `${name} is not ${value}`);
  assert.deepEqual(query().getAll(name), [`!${value}`]);
  if (name === 'channel') await shot('overview-filtered');
  await changeFilter(async () => {
    await page.selectOption(`select[name="${name}-mode"]`, 'is');
  }, `${name} is ${value} again`);
  await changeFilter(async () => {
    await page.fill(`#filter-${name}`, '');
    await page.press(`#filter-${name}`, 'Enter');
  }, `${name} cleared`);
  assert.deepEqual(query().getAll(name), []);
}
// Two values of one filter are alternatives.
await changeFilter(async () => {
  await page.fill('#filter-channel', `${channels[0]}, ${channels[1]}`);
  await page.press('#filter-channel', 'Enter');
}, 'two channels');
assert.deepEqual(query().getAll('channel'), [channels[0], channels[1]]);

// Several projects: one series each, side by side.
const second = withData[1];
await changeFilter(() => page.check(`input[name=projectId][value="${second._id}"]`), 'two projects');
assert.deepEqual(query().getAll('projectId'), [withData[0]._id, second._id]);
assert.equal(await page.locator('.tiles[data-project]').count(), 2);
assert.match(await page.locator('figure[data-report=sessions]').getAttribute('data-query'), /compare=project/);
await shot('overview-two-projects');

// A custom range with hours.
const today = new Date().toISOString().slice(0, 10);
const yesterday = new Date(Date.now() - 864e5).toISOString().slice(0, 10);
await changeFilter(async () => {
  await page.selectOption('select[name=range]', 'custom');
}, 'custom range as shown');
await changeFilter(async () => {
  await page.fill('input[name=from]', `${yesterday}T09:30`);
  await page.fill('input[name=to]', `${today}T17:00`);
  await page.press('input[name=to]', 'Enter');
}, 'custom range with hours');
assert.equal(query().get('from'), `${yesterday}T09:30`);
assert.equal(query().get('to'), `${today}T17:00`);
assert.equal(query().get('range'), null);

// Reloading restores the view, and a bookmark opens it in a new tab as well.
const bookmark = page.url();
await page.reload();
await tilesAgree('after reload');
assert.equal(page.url(), bookmark);
assert.equal(await page.inputValue('select[name=range]'), 'custom');
assert.equal(await page.inputValue('input[name=from]'), `${yesterday}T09:30`);
assert.equal(await page.inputValue('input[name=timezone]'), 'America/St_Johns');
assert.equal(await page.inputValue('select[name=grain]'), 'day');
assert.equal(await page.inputValue('#filter-channel'), `${channels[0]}, ${channels[1]}`);
assert.ok(await page.isChecked(`input[name=projectId][value="${second._id}"]`));

// ---- Downloads: the CSV is the API's, the image a PNG ----
step("Downloads: the CSV is the API's, the image a PNG");

await page.goto(`${BASE}/insights?projectId=${withData[0]._id}&range=30d&timezone=Europe/Berlin`);
await tilesAgree('a shared address');
const figure = page.locator('figure[data-report=topIntents]');
const [csvFile] = await Promise.all([page.waitForEvent('download'), figure.getByRole('button', { name: /as CSV/ }).click()]);
assert.equal(csvFile.suggestedFilename(), 'topIntents.csv');
const csv = readFileSync(await csvFile.path(), 'utf8');
assert.equal(csv, await api(await figure.getAttribute('data-query'), 'text/csv'));
assert.ok(csv.split('\n').length > 3, 'intents listed');
const [pngFile] = await Promise.all([page.waitForEvent('download'), figure.getByRole('button', { name: /as PNG/ }).click()]);
const png = readFileSync(await pngFile.path());
assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');

// ---- Transcripts ----
step('Transcripts');

await page.click('#views a[data-view=transcripts]');
await settled();
assert.equal(query().get('view'), 'transcripts');
const listPath = await page.locator('.sessions').getAttribute('data-query');
const index = await api(listPath);
assert.equal(await page.locator('.sessions li a').count(), index.items.length);
assert.equal(await page.locator('.pager .total').textContent(), `${index.total.toLocaleString('en')} sessions`);
const opened = index.items[0].sessionId;
await page.locator(`.sessions a[data-session="${opened}"]`).click();
await settled();
assert.equal(query().get('session'), opened);
const transcript = await api(await page.locator('.reader').getAttribute('data-query'));
const bubbles = page.locator('.conversation .message');
assert.equal(await bubbles.count(), transcript.items.length);
for (let i = 0; i < transcript.items.length; i += 1) {
  const message = transcript.items[i];
  assert.equal(await bubbles.nth(i).getAttribute('data-source'), message.source);
  if (message.inputText) assert.equal(await bubbles.nth(i).locator('.text').textContent(), message.inputText);
}
assert.ok(await page.locator('.conversation .message.user').count() > 0, 'user messages');
assert.ok(await page.locator('.conversation .message.bot').count() > 0, 'bot messages');
const details = page.locator('.conversation .message.user details.expert').first();
await details.locator('summary').click();
const intent = transcript.items.find((m) => m.type === 'input').intent ?? '–';
assert.equal(await details.locator('dd').first().textContent(), String(intent));
await shot('transcript');

// Searching by a word of a message narrows the list as the API does.
// A word of this conversation (one that says "hi" only has none: then one the demo often says).
const word = transcript.items.filter((m) => m.source === 'user' && m.inputText)
  .flatMap((m) => m.inputText.split(/[^\p{L}\p{N}]+/u)).find((w) => w.length > 3) ?? 'order';
await page.fill('input[name=search]', word);
await page.press('input[name=search]', 'Enter');
await page.waitForFunction(() => new URL(location.href).searchParams.has('search'));
await settled();
assert.equal(query().get('search'), word);
const found = await api(await page.locator('.sessions').getAttribute('data-query'));
assert.ok(found.total >= 1 && found.total <= index.total);
assert.equal(await page.locator('.sessions li a').count(), found.items.length);
// Paging, when there is a next page.
if (found.nextCursor) {
  await page.getByRole('button', { name: 'Older →' }).click();
  await page.waitForFunction(() => new URL(location.href).searchParams.has('page'));
  await settled();
  const next = await api(await page.locator('.sessions').getAttribute('data-query'));
  assert.equal(await page.locator('.sessions li a').first().getAttribute('data-session'), next.items[0].sessionId);
}

// A session handed over to an agent shows the agent's words apart from the bot's.
const handedOver = (await api(`/v2.4/Conversations?$filter=projectId eq '${withData[0]._id}' and source eq 'agent'&$top=1&$select=sessionId`)).value;
assert.equal(handedOver.length, 1, 'the demo has agents answering');
await page.goto(`${BASE}/insights?view=transcripts&projectId=${withData[0]._id}&range=365d&session=${handedOver[0].sessionId}`);
await settled();
assert.ok(await page.locator('.conversation .message.agent').count() > 0, 'agent messages');
assert.equal(await page.locator('.conversation .message.agent .speaker').first().textContent(), 'Agent');

// ---- Steps ----
step('Steps');

await page.click('#views a[data-view=steps]');
await page.waitForFunction(() => new URL(location.href).searchParams.has('startStep'));
await settled();
const funnelPath = await page.locator('.funnel').getAttribute('data-query');
const funnel = await api(funnelPath);
assert.ok(funnel.items.length > 0, 'a funnel');
for (const item of funnel.items) {
  const row = page.locator(`tr[data-path="${item.dimension}"] td[data-measure=${item.measure}]`);
  assert.equal(await row.textContent(), item.value.toLocaleString('en'), `${item.dimension} ${item.measure}`);
}
await page.locator('.funnel-table tbody tr').first().getByRole('button').click();
await page.locator('.behind ul.session-links').waitFor();
assert.ok(await page.locator('.behind a[data-session]').count() > 0, 'the sessions behind the first node');
await shot('steps');
// A session behind the node opens as its conversation.
await page.locator('.behind a[data-session]').first().click();
await settled();
assert.equal(query().get('view'), 'transcripts');
assert.ok(await page.locator('.conversation .message').count() > 0);

// ---- Goals and live agents ----
// With two projects picked, the funnel is the first one's, whose steps it offers.
const funnelStep = new URL(funnelPath, BASE).searchParams.get('startStep');
await page.goto(`${BASE}/insights?view=steps&projectId=${withData[0]._id}&projectId=${withData[1]._id}&range=30d&startStep=${funnelStep}`);
await settled();
const twoPicked = await page.locator('.funnel').getAttribute('data-query');
assert.deepEqual(new URL(twoPicked, BASE).searchParams.getAll('projectId'), [withData[0]._id]);
const firstOnly = await api(twoPicked);
assert.equal(await page.locator('.funnel-table tbody tr').count(), new Set(firstOnly.items.map((i) => i.dimension)).size);
await page.goto(`${BASE}/insights?view=steps&projectId=${withData[0]._id}&range=30d&timezone=Europe/Berlin`);
await settled();

step('Goals and live agents');

await page.click('#views a[data-view=goals]');
await settled();
const goals = await api(await page.locator('.table-slot').getAttribute('data-query'));
assert.ok(goals.items.length > 0, 'the demo reaches goals');
for (const item of goals.items) {
  const cell = page.locator(`tr[data-goal="${item.dimension}"] td[data-measure=${item.measure}]`);
  assert.equal(Number(await cell.getAttribute('data-value')), item.value, `${item.dimension} ${item.measure}`);
}
await shot('goals');
await page.click('#views a[data-view=agents]');
await settled();
const agents = await api(await page.locator('.tile-slot').getAttribute('data-query'));
const shownAgents = await shownTiles();
for (const item of agents.items.filter((i) => i.dimension === 'all')) {
  assert.equal(shownAgents[''][item.measure], item.value, `live agent ${item.measure}`);
}
assert.ok(shownAgents[''].handovers > 0, 'the demo hands over');
await shot('live-agent');

// ---- Honest about errors and about an empty project ----
step('Honest about errors and about an empty project');

expect(400, '/insights/');
await page.goto(`${BASE}/insights?projectId=${withData[0]._id}&from=2026-03-01&to=2026-02-01&timezone=UTC`);
await settled();
const said = await page.locator('#view .error').first().textContent();
const apiSaid = await fetch(`${BASE}/new/v2.0/insights/overview?projectId=${withData[0]._id}&from=2026-03-01&to=2026-02-01&timezone=UTC`,
  { headers: { 'X-API-Key': KEY, Accept: 'application/json' } }).then((r) => r.json());
assert.equal(said, apiSaid.detail, 'the API error in its words');
assert.equal(await page.locator('#view figure.chart .error').count(), await page.locator('#view figure.chart').count(), 'no blank chart');
assert.equal(await page.locator('figure[data-report=topIntents] .error').textContent(), `Top intents: ${apiSaid.detail}`);
await shot('error');
expected = [];

// A zone that does not exist is named, and nothing is asked.
await page.goto(`${BASE}/insights?projectId=${withData[0]._id}&timezone=Mars/Olympus_Mons`);
await page.locator('#view .error').waitFor();
assert.match(await page.locator('#view .error').textContent(), /'Mars\/Olympus_Mons' is not a time zone/);

// A project this sign-in cannot read is left out of a shared address, with a word.
await page.goto(`${BASE}/insights?projectId=0123456789abcdef01234567&projectId=${withData[1]._id}`);
await settled();
assert.deepEqual(query().getAll('projectId'), [withData[1]._id]);
assert.match(await page.locator('#board-error').textContent(), /not one this sign-in may read/);
await tilesAgree('an unreadable project left out');

await page.goto(`${BASE}/insights?projectId=${EMPTY}`);
await settled();
const emptyText = await page.locator('#view .empty').textContent();
assert.match(emptyText, /parley demo/);
assert.ok(await page.locator('#view .empty a[href="/reference"]').count() === 1, 'points at the ingest docs');
await shot('empty');

// ---- Keyboard, phone width, dark ----
step('Keyboard, phone width, dark');

await page.goto(`${BASE}/insights?projectId=${withData[0]._id}`);
await settled();
let reached = false;
for (let i = 0; i < 10 && !reached; i += 1) {
  await page.keyboard.press('Tab');
  reached = await page.evaluate(() => document.activeElement?.dataset?.view === 'transcripts');
}
assert.ok(reached, 'the views are reached by Tab');
await page.keyboard.press('Enter');
await page.waitForFunction(() => new URL(location.href).searchParams.get('view') === 'transcripts');
await settled();

await page.goto(`${BASE}/insights?projectId=${withData[0]._id}`);
await page.setViewportSize({ width: 390, height: 844 });
await settled();
const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
assert.ok(overflow <= 0, `nothing wider than a phone: ${overflow}px over`);
await shot('phone');
await page.setViewportSize({ width: 1280, height: 800 });
await page.emulateMedia({ colorScheme: 'dark' });
await settled();
const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
assert.equal(background, 'rgb(15, 18, 22)', 'dark by the system setting');
await shot('overview-dark');
await page.emulateMedia({ colorScheme: 'light' });

// ---- A quiet refresh, then signing out revokes ----
step('A quiet refresh, then signing out revokes');

tokenRequests.length = 0;
await page.evaluate(() => {
  const held = JSON.parse(sessionStorage.getItem('parley.insights.credentials'));
  held.expires = Date.now();
  sessionStorage.setItem('parley.insights.credentials', JSON.stringify(held));
});
await page.click('#views a[data-view=goals]');
await settled();
assert.ok(tokenRequests.some((body) => body.includes('grant_type=refresh_token')), 'refreshed quietly');
const held = await page.evaluate(() => JSON.parse(sessionStorage.getItem('parley.insights.credentials')));
const bearer = { Authorization: `Bearer ${held.access}` };
await api('/new/v2.0/projects?limit=1', 'application/json', bearer);
await page.click('#sign-out');
await page.locator('#sign-in').waitFor();
assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'nothing kept');
const after = await fetch(`${BASE}/new/v2.0/projects?limit=1`, { headers: bearer });
assert.equal(after.status, 401, 'signing out revoked the sign-in');

// A wrong API key is refused in words; the right one signs in and sees the same projects.
expect(401, '/projects');
await page.fill('#key-form input[name=key]', 'not-a-key');
await page.click('#key-form button');
await page.locator('#sign-in-error').waitFor();
assert.ok((await page.locator('#sign-in-error').textContent()).length > 10, 'the refusal in words');
expected = [];
await page.fill('#key-form input[name=key]', KEY);
await page.click('#key-form button');
await page.locator('#board').waitFor();
await settled();
assert.equal(await page.locator('input[name=projectId]').count(), projects.length);
await page.click('#sign-out');
await page.locator('#sign-in').waitFor();

// A member of one project sees that project alone, even when an address names another.
const another = withData.find((p) => p._id !== MEMBER.project)._id;
await page.goto(`${BASE}/insights?projectId=${another}`);
await page.fill('#password-form input[name=username]', MEMBER.email);
await page.fill('#password-form input[name=password]', MEMBER.password);
await page.click('#password-form button');
await page.locator('#board').waitFor();
await settled();
assert.deepEqual(await page.locator('input[name=projectId]').evaluateAll((boxes) => boxes.map((b) => b.value)), [MEMBER.project]);
assert.deepEqual(query().getAll('projectId'), [MEMBER.project]);
assert.match(await page.locator('#board-error').textContent(), /not one this sign-in may read/);
await tilesAgree('a member of one project');

// A sign-in revoked elsewhere ends here too: the refresh is refused, and the page asks to sign in.
const member = await page.evaluate(() => JSON.parse(sessionStorage.getItem('parley.insights.credentials')));
await fetch(`${BASE}/auth/oauth2/revoke`, { method: 'POST', body: new URLSearchParams({ token: member.refresh, client_id: 'default' }) });
await page.evaluate(() => {
  const stored = JSON.parse(sessionStorage.getItem('parley.insights.credentials'));
  stored.expires = Date.now();
  sessionStorage.setItem('parley.insights.credentials', JSON.stringify(stored));
});
expect(400, '/auth/oauth2/token');
await page.click('#views a[data-view=goals]');
await page.locator('#sign-in').waitFor();
assert.equal(await page.locator('#sign-in-error').textContent(), 'Your sign-in has ended; please sign in again.');
assert.equal(await page.evaluate(() => sessionStorage.length), 0);
expected = [];

}

try {
  await run();
} catch (error) {
  console.error(`failed at ${page.url()}\n${error.stack || error}\n${problems.join('\n')}`);
  await page.screenshot({ path: join(SHOTS, 'failure.png') }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
if (problems.length) {
  console.error(`the browser saw what it should not:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('dashboard: every check passed');
