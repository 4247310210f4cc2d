/**
 * The dashboard end to end, in a real browser (Debian's Chromium through playwright-core) against
 * the real stack: the api serving the built dashboard on a real port, PostgreSQL, Temporal with a
 * worker for calls, campaigns and the dialer, the relay, and the outbound Twilio peer answering the
 * campaign's calls. Everything is done as a user does it — by label, by click or by keyboard — and
 * each step's outcome is also checked through the public API. Screenshots: test-output/e2e/dashboard/.
 */
import request from 'supertest';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { waitUntil } from '../lib/net';
import { HubSpotPeer } from './peers/hubspot-peer';
import { bearer, uniqueEmail } from './support/stack';
import { createCampaign, startCampaignStack, testNumber, type CampaignStack } from './support/campaign-stack';
import path from 'node:path';
import { launchChromium, Screenshots, spokenWav, unlabelledControls, waitForText } from './support/browser';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildDashboardIfStale } = require('../scripts/build-dashboard.cjs') as {
  buildDashboardIfStale: () => boolean;
};

jest.setTimeout(180_000);

let cs: CampaignStack;
let hubspot: HubSpotPeer;
const HUBSPOT_TOKEN = 'pat-na1-dashboard-e2e-0000000000000';
let browser: Browser;
let context: BrowserContext;
let page: Page;
const shots = new Screenshots('dashboard');
/** Filled in as the suite goes: the agent built in the designer and the chat's call. */
const built = { agentId: '', callId: '' };

beforeAll(async () => {
  if (!buildDashboardIfStale()) throw new Error('the dashboard did not build');
  hubspot = new HubSpotPeer({ accessToken: HUBSPOT_TOKEN });
  cs = await startCampaignStack({
    worker: true,
    peer: { fastMedia: true },
    env: { HUBSPOT_API_BASE_URL: await hubspot.start() },
  });
  // The fake microphone: a caller who waits for the agent to finish, then says "yes".
  const microphoneWav = await spokenWav(path.join(shots.dir, '..', 'caller-says-yes.wav'), 'yes', {
    leadSeconds: 9,
    tailSeconds: 4,
  });
  browser = await launchChromium({ microphoneWav });
  context = await browser.newContext({ baseURL: cs.apiUrl, viewport: { width: 1440, height: 1000 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await cs?.close();
  await hubspot?.stop();
});

/** Every control on the current page has an accessible name. */
async function expectLabelled() {
  expect(await unlabelledControls(page)).toEqual([]);
}

const main = () => page.locator('main');

async function signIn(email: string, password: string) {
  await page.goto('/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

describe('the dashboard in a browser', () => {
  it('signs in and shows the navigation', async () => {
    await page.goto('/agents');
    await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    await expectLabelled();
    // A wrong password is refused with a message, and nothing is stored.
    await page.getByLabel('Email').fill(cs.tenant.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(page.getByRole('alert'), /email or password is wrong/i);
    await shots.take(page, 'sign-in-refused');

    await page.getByLabel('Password').fill(cs.tenant.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const nav = page.getByRole('navigation', { name: 'Main' });
    for (const item of [
      'Agents',
      'Calls',
      'Campaigns',
      'Phone numbers',
      'Analytics',
      'Integrations',
      'Billing',
    ]) {
      await nav.getByRole('link', { name: item, exact: true }).waitFor();
    }
    // The agents of this tenant (the campaign's Reminder agent) are listed.
    await main().getByRole('link', { name: 'Reminder' }).waitFor();
    await expectLabelled();
    await shots.take(page, 'agents');
  });

  it('builds a three-node agent in the flow designer and publishes it', async () => {
    await page.getByRole('button', { name: 'New agent' }).click();
    await page.getByLabel('Agent name').fill('Front desk');
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.waitForURL(/\/agents\/[0-9a-f-]{36}/);
    built.agentId = /\/agents\/([0-9a-f-]{36})/.exec(page.url())![1]!;

    await page.getByRole('tab', { name: 'Flow' }).click();
    const tools = page.getByRole('toolbar', { name: 'Flow tools' });
    const inspector = page.getByRole('region', { name: 'Node inspector' });

    await tools.getByRole('button', { name: 'Add say node' }).click();
    await inspector.getByLabel('Text').fill('Welcome to the front desk.');
    await tools.getByRole('button', { name: 'Add collect node' }).click();
    await inspector.getByLabel('Prompt').fill('Shall I book your appointment?');
    await inspector.getByLabel('Slot name').fill('confirm');
    await inspector.getByLabel('Slot type').selectOption('yes_no');
    // The new nodes are not connected yet: the designer shows the problem on the node itself.
    await waitForText(page.locator('.react-flow'), /⚠/);
    await shots.take(page, 'flow-with-problems');

    // Connect collect → end, then say → collect, with the inspector (the keyboard way).
    await inspector.getByLabel('Connect to').selectOption('end');
    await inspector.getByRole('button', { name: 'Add connection' }).click();
    // Select the say node by keyboard: focus it on the canvas and press Enter.
    await page.locator('.react-flow__node[data-id="say_1"]').focus();
    await page.keyboard.press('Enter');
    await waitForText(inspector, /say_1/);
    await inspector.getByLabel('Connect to').selectOption('collect_1');
    await inspector.getByRole('button', { name: 'Add connection' }).click();
    await tools.getByLabel('Start node').selectOption('say_1');
    await waitForText(tools, /No problems/);
    await tools.getByRole('button', { name: 'Auto-layout' }).click();
    await expectLabelled();
    await shots.take(page, 'flow-three-nodes');

    await page.getByRole('button', { name: 'Save draft' }).click();
    await page.getByRole('button', { name: 'Publish' }).click();
    await waitForText(main(), /Published version 1/);
    await shots.take(page, 'published');

    // What was published is the flow drawn: say → collect → end, starting at say.
    const version = await request(cs.stack.app)
      .get(`/v1/agents/${built.agentId}/versions/1`)
      .set(bearer(cs.tenant.token));
    expect(version.status).toBe(200);
    const flow = version.body.definition.flow as {
      startNodeId: string;
      nodes: { id: string; type: string }[];
      edges: { source: string; target: string }[];
    };
    expect(flow.startNodeId).toBe('say_1');
    expect(flow.nodes.map((n) => `${n.id}:${n.type}`).sort()).toEqual([
      'collect_1:collect',
      'end:end',
      'say_1:say',
    ]);
    expect(flow.edges.map((e) => `${e.source}->${e.target}`).sort()).toEqual([
      'collect_1->end',
      'say_1->collect_1',
    ]);
  });

  it('chats with the published agent in the test panel until the agent ends the call', async () => {
    const panel = page.getByRole('region', { name: 'Test panel' });
    await panel.getByLabel('Test with').selectOption({ label: 'Version 1' });
    await panel.getByRole('button', { name: 'Start chat' }).click();
    const conversation = panel.getByRole('list', { name: 'Conversation' });
    await waitForText(conversation, /Welcome to the front desk\.[\s\S]*Shall I book your appointment\?/);
    await waitForText(conversation, /node: collect_1/);
    await panel.getByLabel('Message').fill('yes please');
    await panel.getByRole('button', { name: 'Send' }).click();
    await waitForText(panel, /Conversation ended/);
    await waitForText(conversation, /confirm = (yes|true)/i);
    await shots.take(page, 'chat-ended');
    const href = await panel.getByRole('link', { name: 'Open call details' }).getAttribute('href');
    built.callId = /\/calls\/([0-9a-f-]{36})/.exec(href ?? '')![1]!;

    const call = await request(cs.stack.app).get(`/v1/calls/${built.callId}`).set(bearer(cs.tenant.token));
    expect(call.body).toMatchObject({
      agentId: built.agentId,
      status: 'completed',
      disposition: 'completed',
    });
    expect(call.body.slots).toMatchObject({ confirm: true });
  });

  it('calls the agent from the browser with the microphone, through the relay, with live transcript and latency', async () => {
    const panel = page.getByRole('region', { name: 'Test panel' });
    await panel.getByRole('button', { name: 'Start voice call' }).click();
    const state = panel
      .getByRole('status')
      .filter({ hasText: /^(Not in a call|Connecting…|Live|Call ended)$/ });
    await waitForText(state, /^Live$/, 30_000);
    // The agent's words come back as audio, are played, and appear in the live transcript; the
    // caller's "yes" (the fake microphone) is heard, the agent answers and ends the call.
    const transcript = panel.getByRole('list', { name: 'Call transcript' });
    await waitForText(transcript, /Welcome to the front desk[\s\S]*Shall I book your appointment\?/, 30_000);
    await shots.take(page, 'voice-call-live');
    await waitForText(
      transcript,
      /You\s+(yes|yep|yeah)\b[\s\S]*Thanks for calling\. Goodbye!/i,
      60_000,
    ).catch(async (err) => {
      await shots.take(page, 'voice-call-failed');
      throw err;
    });
    await waitForText(panel, /Response latency per turn/);
    await waitForText(state, /^Call ended$/, 30_000);
    await shots.take(page, 'voice-call-ended');

    const href = await panel.getByRole('link', { name: 'Voice call details' }).getAttribute('href');
    const callId = /\/calls\/([0-9a-f-]{36})/.exec(href ?? '')![1]!;
    const call = await pollCall(callId, (c) => c.status === 'completed');
    expect(call).toMatchObject({ agentId: built.agentId, channel: 'web', disposition: 'completed' });
    expect(call.slots).toMatchObject({ confirm: true });
    const turns = call.transcript as { role: string; timings: Record<string, number> | null }[];
    // The answer's turn carries the relay's stage timings (what the latency chart draws).
    expect(
      turns.some((t) => t.role === 'agent' && typeof t.timings?.endpointedToFirstFrameMs === 'number'),
    ).toBe(true);
  });

  it('finds the call in the calls list and opens its detail with the transcript', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Calls' }).click();
    await page.getByRole('heading', { name: 'Calls', level: 1 }).waitFor();
    await main().getByLabel('Agent', { exact: true }).selectOption({ label: 'Front desk' });
    await main().getByLabel('Channel', { exact: true }).selectOption('text');
    const row = main().getByRole('link', { name: `Open call ${built.callId.slice(0, 8)}` });
    await row.waitFor();
    // The filters (kept in the address) show only this agent's text calls: the one chat.
    await waitForCount(main().getByRole('link', { name: /^Open call / }), 1);
    expect(new URL(page.url()).searchParams.get('channel')).toBe('text');
    await expectLabelled();
    await shots.take(page, 'calls-list');

    await row.click();
    await page.getByRole('heading', { name: `Call ${built.callId.slice(0, 8)}` }).waitFor();
    const transcript = page.getByRole('list', { name: 'Transcript' });
    await waitForText(transcript, /Welcome to the front desk\.[\s\S]*yes please[\s\S]*Goodbye/);
    const temporal = page.getByRole('link', { name: 'Open in Temporal Web UI' });
    expect(await temporal.getAttribute('href')).toContain(encodeURIComponent(`call:${built.callId}`));
    await expectLabelled();
    await shots.take(page, 'call-detail');
  });

  it('previews a contacts CSV with one bad row and names that row and why', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Campaigns' }).click();
    await main().getByRole('link', { name: 'New campaign' }).click();
    await page.getByLabel('Campaign name').fill('Reminders in the browser');
    await page.getByLabel('Agent', { exact: true }).selectOption({ label: 'Reminder' });
    await page.getByLabel('Caller number').selectOption({ label: cs.callerNumber });
    const csv = [
      'phone,name,clinic',
      `${testNumber(212, 4101)},Ada Lovelace,Northside`,
      `${testNumber(212, 4102)},Alan Turing,Northside`,
      'not-a-number,Grace Hopper,Northside',
    ].join('\n');
    await page.getByLabel('Contacts CSV').setInputFiles({
      name: 'contacts.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(csv),
    });
    const preview = page.getByRole('table', { name: 'Contacts preview' });
    await waitForText(main(), /2 valid · 1 invalid/);
    await waitForText(preview, /Row 4[\s\S]*phone/i);
    await expectLabelled();
    await shots.take(page, 'csv-preview');
    // A preview stores nothing.
    const lists = await request(cs.stack.app).get('/v1/contact-lists').set(bearer(cs.tenant.token));
    expect(lists.body.data.map((l: { name: string }) => l.name)).not.toContain('Reminders in the browser');
  });

  it('launches the small campaign and watches its progress reach completed', async () => {
    await openCallingWindowsAllWeek(page);
    await page.getByRole('button', { name: 'Create campaign' }).click();
    await page.waitForURL(/\/campaigns\/[0-9a-f-]{36}$/);
    const campaignId = /\/campaigns\/([0-9a-f-]{36})$/.exec(page.url())![1]!;
    await page.getByRole('button', { name: 'Launch' }).click();
    const progress = page.getByRole('region', { name: 'Progress' });
    await waitForText(progress, /in flight|done/i);
    await shots.take(page, 'campaign-running');
    await waitForText(main(), /Campaign completed/, 120_000);
    await waitForText(page.getByTestId('campaign-status'), /^completed$/);
    // The contacts table ends on each contact's final state.
    const contactsTable = page.getByRole('region', { name: 'Contacts', exact: true }).getByRole('table');
    await waitForText(contactsTable, /Ada Lovelace\s+completed[\s\S]*Alan Turing\s+completed/);
    await shots.take(page, 'campaign-completed');

    const res = await request(cs.stack.app)
      .get(`/v1/campaigns/${campaignId}/progress`)
      .set(bearer(cs.tenant.token));
    expect(res.body).toMatchObject({ status: 'completed', done: true, inFlight: 0 });
    const dialed = [...cs.twilio.calls.values()].map((c) => c.to).sort();
    expect(dialed).toEqual([testNumber(212, 4101), testNumber(212, 4102)]);
  });

  it('pauses, edits, resumes and cancels a running campaign from its page', async () => {
    // Three contacts whose phones ring unanswered for a long time: the campaign stays running.
    const contacts = [5101, 5102, 5103].map((n, i) => ({ phone: testNumber(313, n), name: `Slow ${i}` }));
    for (const c of contacts) cs.twilio.script(c.phone, { outcome: 'no-answer', ringMs: 120_000 });
    const allDay = Object.fromEntries(
      ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [{ start: '00:00', end: '24:00' }]]),
    );
    const { id } = await createCampaign(cs, {
      name: 'Slow line',
      contacts,
      settings: { windows: allDay, maxConcurrentCalls: 1 },
    });
    await page.goto(`/campaigns/${id}`);
    const status = page.getByTestId('campaign-status');
    await page.getByRole('button', { name: 'Launch' }).click();
    await waitForText(status, /^running$/);
    await waitForText(page.getByRole('region', { name: 'Progress' }), /1\s+In flight/);

    await page.getByRole('button', { name: 'Pause' }).click();
    await waitForText(status, /^paused$/);
    // Edit while paused: two lines instead of one, applied by the campaign's workflow.
    await page.getByRole('button', { name: 'Edit settings' }).click();
    const edit = page.getByRole('region', { name: 'Edit settings' });
    await edit.getByLabel('Max concurrent calls').fill('2');
    await edit.getByRole('button', { name: 'Save settings' }).click();
    await waitForText(main(), /Settings saved/);
    const edited = await request(cs.stack.app).get(`/v1/campaigns/${id}`).set(bearer(cs.tenant.token));
    expect(edited.body.settings.maxConcurrentCalls).toBe(2);

    await page.getByRole('button', { name: 'Resume' }).click();
    await waitForText(status, /^running$/);
    await waitForText(page.getByRole('region', { name: 'Progress' }), /2\s+In flight/, 30_000);
    await shots.take(page, 'campaign-resumed-two-lines');

    // Both lines are ringing at the carrier before the cancel.
    await waitUntil('both lines ringing', () => Promise.resolve(dialedOf(contacts).length === 2), 30_000);
    await page.getByRole('button', { name: 'Cancel campaign' }).click();
    await page.getByRole('button', { name: 'Yes, stop calling' }).click();
    await waitForText(status, /^canceled$/, 30_000);
    await shots.take(page, 'campaign-canceled');
    // Cancel lets the two ringing calls finish and dials nobody else.
    const progress = await request(cs.stack.app)
      .get(`/v1/campaigns/${id}/progress`)
      .set(bearer(cs.tenant.token));
    expect(progress.body.status).toBe('canceled');
    await new Promise((r) => setTimeout(r, 1_000));
    const dialed = dialedOf(contacts);
    expect(dialed).toHaveLength(2);
    expect(new Set(dialed.map((c) => c.to)).size).toBe(2);
  });

  it('publishes a second version, shows a readable diff, and rolls the draft back', async () => {
    await page.goto(`/agents/${built.agentId}`);
    await page.getByRole('tab', { name: 'Settings' }).click();
    const greeting = page.getByLabel('Greeting', { exact: true });
    const firstGreeting = await greeting.inputValue();
    await greeting.fill('Good morning! You have reached the front desk.');
    await page.getByRole('button', { name: 'Save draft' }).click();
    await page.getByRole('button', { name: 'Publish' }).click();
    await waitForText(main(), /Published version 2/);

    await page.getByRole('tab', { name: 'Versions' }).click();
    await page.getByLabel('Compare from').selectOption('1');
    await page.getByLabel('Compare to').selectOption('2');
    // The diff names the field and shows the text before and after.
    await waitForText(
      main(),
      /Greeting[\s\S]*Hello! Thanks for calling[\s\S]*Good morning! You have reached the front desk\./,
    );
    await expectLabelled();
    await shots.take(page, 'version-diff');

    await page.getByRole('button', { name: 'Roll back to version 1' }).click();
    await page.getByRole('button', { name: 'Confirm roll back' }).click();
    await waitForText(main(), /Draft restored from version 1/);
    const agent = await request(cs.stack.app).get(`/v1/agents/${built.agentId}`).set(bearer(cs.tenant.token));
    expect(agent.body.draft?.greeting ?? agent.body.definition?.greeting).toBe(firstGreeting);
    await shots.take(page, 'rolled-back');
  });

  it('registers a phone number and assigns an agent to it', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Phone numbers' }).click();
    const number = testNumber(646, 7001);
    const form = page.getByRole('form', { name: 'Register number' });
    await form.getByLabel('Phone number').fill(number);
    await form.getByLabel('Label').fill('Front desk line');
    await form.getByLabel('Agent', { exact: true }).selectOption({ label: 'Front desk' });
    await form.getByRole('button', { name: 'Register number' }).click();
    const rowAgent = page.getByLabel(`Agent for ${number}`);
    await rowAgent.waitFor();
    // Reassign it from the table.
    await rowAgent.selectOption({ label: 'Reminder' });
    await waitForText(main(), /Saved/);
    await expectLabelled();
    await shots.take(page, 'phone-numbers');
    const numbers = await request(cs.stack.app).get('/v1/phone-numbers').set(bearer(cs.tenant.token));
    expect(numbers.body.data.find((n: { number: string }) => n.number === number)).toMatchObject({
      agentId: cs.agentId,
    });
    // A number already registered is refused with the reason next to the field.
    await form.getByLabel('Phone number').fill(number);
    await form.getByRole('button', { name: 'Register number' }).click();
    await waitForText(form, /already|taken/i);
  });

  it('connects HubSpot (checked against the CRM), tests it, and disconnects', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Integrations' }).click();
    const card = page.getByRole('region', { name: 'HubSpot', exact: true });
    await card.getByLabel('HubSpot private app token').fill('pat-na1-not-the-right-token-0000');
    await card.getByRole('button', { name: 'Connect HubSpot' }).click();
    await waitForText(card, /CRM_CREDENTIALS_REJECTED/);
    await card.getByLabel('HubSpot private app token').fill(HUBSPOT_TOKEN);
    await card.getByRole('button', { name: 'Connect HubSpot' }).click();
    await waitForText(card, /connected/i);
    await card.getByRole('button', { name: 'Test connection' }).click();
    await waitForText(card, /ok|succeeded|works|passed/i);
    await expectLabelled();
    await shots.take(page, 'integrations');
    const listed = await request(cs.stack.app).get('/v1/integrations').set(bearer(cs.tenant.token));
    expect(JSON.stringify(listed.body)).not.toContain(HUBSPOT_TOKEN);
    page.once('dialog', (dialog) => void dialog.accept());
    await card.getByRole('button', { name: 'Disconnect' }).click();
    await waitForText(card, /not connected/i);
  });

  it('shows analytics and billing with charts of the calls made', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Analytics' }).click();
    const analytics = await request(cs.stack.app).get('/v1/analytics').set(bearer(cs.tenant.token));
    expect(analytics.status).toBe(200);
    // Every call this workspace made so far (chat, voice, campaigns) is counted, and shown.
    const calls = await request(cs.stack.app).get('/v1/calls?limit=200').set(bearer(cs.tenant.token));
    expect(analytics.body.totals.calls).toBe(calls.body.data.length);
    await waitForText(main().locator('.stat').first(), new RegExp(`^Calls\\s+${calls.body.data.length}\\b`));
    await page.getByRole('img', { name: /^Calls per day/ }).waitFor();
    await page.getByRole('img', { name: /^Turn latency/ }).waitFor();
    await expectLabelled();
    await shots.take(page, 'analytics');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Billing' }).click();
    await page.getByRole('progressbar', { name: 'Minutes used' }).waitFor();
    await page.getByRole('img', { name: /^Usage this period/ }).waitFor();
    await page.getByRole('heading', { name: 'Invoices' }).waitFor();
    await expectLabelled();
    await shots.take(page, 'billing');
  });

  it('works by keyboard: sign in, reach the calls and open one without the mouse', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page
      .getByLabel('Email')
      .waitFor()
      .catch(async (err) => {
        await shots.take(page, 'sign-out-failed');
        throw err;
      });
    await page.getByLabel('Email').focus();
    await page.keyboard.type(cs.tenant.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(cs.tenant.password);
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    // Tab from the page start to the Calls link and follow it.
    await page.keyboard.press('Tab'); // skip link
    let found = false;
    for (let i = 0; i < 30 && !found; i++) {
      await page.keyboard.press('Tab');
      found = (await page.evaluate<string | null>('document.activeElement?.textContent ?? null')) === 'Calls';
    }
    expect(found).toBe(true);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Calls', level: 1 }).waitFor();
    const link = main().getByRole('link', { name: `Open call ${built.callId.slice(0, 8)}` });
    await link.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: `Call ${built.callId.slice(0, 8)}` }).waitFor();
    await shots.take(page, 'keyboard-call-detail');
  });

  it('a viewer sees no edit buttons, and the API refuses the edit anyway', async () => {
    const email = uniqueEmail('viewer');
    const password = 'a viewer password';
    const created = await request(cs.stack.app)
      .post('/v1/users')
      .set(bearer(cs.tenant.token))
      .send({ email, name: 'Vera Viewer', role: 'viewer', password });
    expect(created.status).toBe(201);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(email, password);
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link', { name: 'Billing' }).count()).toBe(0);
    await page.goto(`/agents/${built.agentId}`);
    await page.getByRole('tab', { name: 'Flow' }).click();
    await page.locator('.react-flow__node', { hasText: 'collect_1' }).waitFor();
    for (const name of ['Save draft', 'Publish', 'Add say node', 'Delete node']) {
      expect(await page.getByRole('button', { name }).count()).toBe(0);
    }
    await page.goto('/agents');
    expect(await page.getByRole('button', { name: 'New agent' }).count()).toBe(0);
    await shots.take(page, 'viewer-agents');
    const token = await page.evaluate<string | null>("localStorage.getItem('parley.token')");
    const refused = await request(cs.stack.app)
      .post(`/v1/agents/${built.agentId}/publish`)
      .set(bearer(token!))
      .send({});
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('INSUFFICIENT_ROLE');
  });

  it('switches between the workspaces one email belongs to', async () => {
    const second = await request(cs.stack.app).post('/v1/auth/signup').send({
      tenantName: 'Second Workspace',
      name: 'Same Person',
      email: cs.tenant.email,
      password: cs.tenant.password,
    });
    expect(second.status).toBe(201);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Email').fill(cs.tenant.email);
    await page.getByLabel('Password').fill(cs.tenant.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Two workspaces: the sign-in asks which one.
    await page.getByLabel('Workspace').selectOption(cs.tenant.tenantId);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const switcher = page.getByLabel('Switch workspace');
    await switcher.waitFor();
    await switcher.selectOption(second.body.tenant.id as string);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Agents' }).click();
    // The new workspace has none of the first one's agents.
    // The switcher follows the session: it shows the new workspace once the switch is done.
    await waitUntil(
      'the switch to the second workspace',
      async () => (await switcher.inputValue()) === second.body.tenant.id,
      15_000,
    );
    await waitForCount(main().getByRole('link', { name: 'Reminder' }), 0);
    await shots.take(page, 'second-workspace');
    await switcher.selectOption(cs.tenant.tenantId);
    await main().getByRole('link', { name: 'Reminder' }).waitFor();
  });
});

/** The peer's calls to these contacts. */
function dialedOf(contacts: { phone: string }[]) {
  return [...cs.twilio.calls.values()].filter((c) => contacts.some((k) => k.phone === c.to));
}

/** Waits until the locator matches exactly `n` elements (a list settles after a filter changes). */
async function waitForCount(locator: Locator, n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let count = await locator.count();
  while (count !== n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} elements, found ${count}`);
    await new Promise((r) => setTimeout(r, 100));
    count = await locator.count();
  }
}

/** GET /v1/calls/:id until `done` says so (a call's record is finished by its workflow). */
async function pollCall(callId: string, done: (call: Record<string, unknown>) => boolean) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await request(cs.stack.app).get(`/v1/calls/${callId}`).set(bearer(cs.tenant.token));
    if (res.status === 200 && done(res.body as Record<string, unknown>))
      return res.body as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`call ${callId}: ${res.status} ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Sets every weekday's calling window to the whole day, so the campaign dials whatever the hour. */
async function openCallingWindowsAllWeek(p: Page): Promise<void> {
  await p.getByRole('button', { name: 'Every day, all day' }).click();
  for (const day of ['Monday', 'Sunday']) {
    expect(await p.getByLabel(`${day} window 1 from`).inputValue()).toBe('00:00');
  }
}
