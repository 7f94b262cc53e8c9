// The hosted waiting room's script. The markup is rendered on the server
// (room.html); this script follows the person's entry through the SDK and
// only switches views and fills in values, always as text, never as HTML.

import { createClient } from '/sdk/v1/velvet.js';

const config = JSON.parse(document.getElementById('velvet-config').textContent);
const client = createClient(location.origin);
const ours = new Set(config.sequences.map((s) => s.id));
const $ = (id) => document.getElementById(id);

const VIEWS = [
  'loading', 'queue', 'prequeue', 'admitted', 'soldout',
  'draw', 'registered', 'result', 'closed', 'error',
];
// Long enough to read "It's your turn" (and for a screen reader to say
// it), short enough that nobody waits for it.
const HANDOFF_DELAY_MS = 1000;
const HIGH_DEMAND_SECONDS = 15 * 60;

const state = {
  experience: config.state,
  inLine: false,
  delayed: false,
  highDemand: false,
  leaving: false,
};

function show(view) {
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  document.body.dataset.view = view;
}

// === Notices: at most one, the most pressing ===

const NOTICES = {
  delay: "We're experiencing a temporary delay. Your place in line is secure: "
    + "there's no need to refresh.",
  delayNew: "We're experiencing a temporary delay. Keep this page open: we keep "
    + 'trying for you.',
  paused: 'Admission is paused for a moment. Your place in line is secure.',
  soldout: "Sold out for now. You're on the waitlist and keep your place: if "
    + 'more become available, the line moves again.',
  demand: 'Demand is very high right now. Thank you for waiting: your place in '
    + 'line is held.',
};

function noticeKind() {
  if (state.leaving) return null;
  if (state.delayed) return state.inLine ? 'delay' : 'delayNew';
  if (!state.inLine) return null;
  if (state.experience === 'paused') return 'paused';
  if (state.experience === 'sold_out') return 'soldout';
  return state.highDemand ? 'demand' : null;
}

function renderNotice() {
  const kind = noticeKind();
  const el = $('notice');
  el.hidden = !kind;
  el.dataset.kind = kind || '';
  el.textContent = kind ? NOTICES[kind] : '';
}

function setAnnouncement(text) {
  $('announcement').hidden = !text;
  $('announcement-text').textContent = text || '';
}

// === Formatting ===

function waitLabel(seconds) {
  if (seconds == null) return 'Calculating…';
  if (seconds < 60) return 'Less than a minute';
  if (seconds < 3600) {
    const minutes = Math.ceil(seconds / 60);
    return `About ${minutes} minute${minutes === 1 ? '' : 's'}`;
  }
  return `About ${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function setTime(el, iso) {
  if (!iso) return;
  const at = new Date(iso);
  const sameDay = at.toDateString() === new Date().toDateString();
  el.dateTime = iso;
  el.textContent = sameDay
    ? at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : at.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/** Share of the way from where this person started to the front. */
function progress(queueId, position) {
  const key = `velvet.start ${queueId}`;
  let start = 0;
  try {
    start = Number(localStorage.getItem(key)) || 0;
    if (start < position) {
      start = position;
      localStorage.setItem(key, String(start));
    }
  } catch {
    start = position;
  }
  return Math.round((100 * (start - position)) / start);
}

const sequence = (id) => config.sequences.find((s) => s.id === id) || { id };
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// === Live updates ===

client.on('queue:position-updated', (e) => {
  if (!ours.has(e.queueId) || state.leaving) return;
  state.inLine = true;
  state.delayed = false;
  if (e.state === 'pre-queue') {
    show('prequeue');
    setTime($('opens-at'), sequence(e.queueId).opensAt);
  } else {
    showPosition(e);
  }
  renderNotice();
});

function showPosition({ queueId, position, estimatedWait }) {
  show('queue');
  $('position').textContent = position.toLocaleString();
  $('wait').textContent = waitLabel(estimatedWait);
  $('progress').value = progress(queueId, position);
  state.highDemand = estimatedWait != null && estimatedWait >= HIGH_DEMAND_SECONDS;
  document.title = `#${position} · ${config.name}`;
}

client.on('queue:access-granted', (e) => {
  if (ours.has(e.queueId)) leaveFor(e.handoffToken, e.expiresAt, "It's your turn!");
});

// Back after the turn came: the entry is over, and entering again would
// only return it (entries are idempotent), so say what became of it.
const ENDED = {
  redeemed: ['You have checked out', 'Your access to this launch has been used. Thank you!'],
  expired: [
    'Your access expired',
    'Your turn came, but the time reserved for checkout ran out before it was used.',
  ],
  left: ['You left the line', 'You are no longer in this line.'],
};

client.on('queue:entry-ended', (e) => {
  if (!ours.has(e.queueId) || state.leaving) return;
  const [heading, text] = ENDED[e.state] || ENDED.left;
  state.inLine = false;
  $('closed-heading').textContent = heading;
  $('closed-text').textContent = text;
  document.body.dataset.ended = e.state;
  show('closed');
  renderNotice();
});

client.on('draw:completed', (e) => {
  if (ours.has(e.drawId)) showResult(e);
});

client.on('experience:updated', (e) => {
  if (e.experienceId !== config.experienceId) return;
  state.experience = e.state;
  state.delayed = false;
  setAnnouncement(e.announcement);
  renderNotice();
});

const CONNECTION_LABELS = {
  connecting: 'Connecting…',
  live: 'Live updates',
  polling: 'Updating every few seconds',
  offline: 'Reconnecting…',
};

client.on('connection', ({ state: connection }) => {
  document.body.dataset.connection = connection;
  const label = CONNECTION_LABELS[connection];
  $('connection').hidden = !label;
  $('connection').textContent = label || '';
  // Cut off from the node: the place is kept server-side all the same.
  state.delayed = connection === 'offline';
  renderNotice();
});

client.on('retry', () => {
  state.delayed = true;
  renderNotice();
});

client.on('error', (e) => console.warn('velvet:', e.code, e.message));

// === Admission: off to checkout ===

function checkoutHref(token) {
  if (!config.checkoutUrl) return null;
  // Relative URLs (`/demo/checkout`) are paths on this node.
  const url = new URL(config.checkoutUrl, location.origin);
  url.searchParams.set('token', token);
  return url.href;
}

function leaveFor(token, expiresAt, heading) {
  if (state.leaving) return;
  state.leaving = true;
  renderNotice();
  $('admitted-heading').textContent = heading;
  setTime($('admitted-until'), expiresAt);
  show('admitted');
  const href = checkoutHref(token);
  if (!href) {
    $('checkout-link').hidden = true;
    return;
  }
  $('checkout-link').href = href;
  // replace(): "back" from checkout must not land here and bounce again.
  setTimeout(() => location.replace(href), HANDOFF_DELAY_MS);
}

// === Draws ===

const RESULTS = {
  won: ['You were selected', 'Your access has already been used.'],
  lost: [
    'Not selected this time',
    'Thank you for taking part. The winners were picked at random from '
      + 'everyone registered.',
  ],
  waitlisted: [
    "You're on the waitlist",
    'If a winner does not check out in time, their place passes on in the '
      + "drawn order. Keep this page open: if it's you, you go straight to checkout.",
  ],
};

function showResult(e) {
  if (state.leaving) return;
  if (e.isWinner && e.handoffToken) {
    leaveFor(e.handoffToken, e.expiresAt, "You've been selected!");
    return;
  }
  const [heading, text] = RESULTS[e.state] || RESULTS.lost;
  $('result-heading').textContent = heading;
  $('result-text').textContent = text;
  $('proof-link').href = `/v1/draws/${encodeURIComponent(e.drawId)}/proof`;
  document.body.dataset.result = e.state;
  show('result');
}

function showRegistered(seq, drawAt) {
  const at = drawAt || seq.closesAt;
  $('draw-at-wrap').hidden = !at;
  setTime($('draw-at'), at);
  show('registered');
}

function showRegistration(seq) {
  $('draw-closes-wrap').hidden = !seq.closesAt;
  setTime($('draw-closes'), seq.closesAt);
  if (seq.winners) {
    const s = seq.winners === 1 ? '' : 's';
    const count = seq.winners.toLocaleString();
    $('draw-winners').textContent = `${count} winner${s} will be picked.`;
  }
  const button = $('draw-enter');
  button.onclick = async () => {
    button.disabled = true;
    $('draw-error').hidden = true;
    try {
      const registration = await client.draws.enter(seq.id);
      showRegistered(seq, registration.drawAt);
    } catch (e) {
      button.disabled = false;
      $('draw-error').hidden = false;
      $('draw-error').textContent = refusal(e)[1];
    }
  };
  show('draw');
}

/** The registration of this browser's session, or null if none. */
async function registration(seqId) {
  try {
    return await client.draws.result(seqId);
  } catch (e) {
    if (e.code === 'NOT_FOUND') return null;
    throw e;
  }
}

async function drawFlow(seq) {
  const entry = await registration(seq.id);
  // A drawn result arrives as `draw:completed`, from this call or the socket.
  if (entry) {
    if (entry.state === 'pending') showRegistered(seq, null);
  } else if (seq.state === 'open') {
    showRegistration(seq);
  } else {
    closed(seq);
  }
}

// === Queues ===

async function queueFlow() {
  for (let attempt = 0; ; attempt++) {
    try {
      const entry = await client.experiences.enter(config.experienceId);
      if (entry.kind === 'draw') showRegistered(sequence(entry.sequenceId), entry.drawAt);
      return;
    } catch (e) {
      if (!e.retryable) {
        refused(e);
        return;
      }
      // The SDK has retried already; keep trying, more slowly.
      state.delayed = true;
      renderNotice();
      await sleep(Math.min(30000, 2000 * 2 ** attempt) * (0.5 + Math.random() / 2));
    }
  }
}

// === Refusals, closed rooms, failures ===

function refusal(e) {
  switch (e.code) {
    case 'CAPACITY_REACHED':
      return ['The line is full', 'Everyone who fits in this line is in it already.'];
    case 'CLOSED':
      return ['This waiting room is closed', 'Entry has closed.'];
    case 'NOT_OPEN':
      return ['Not open yet', 'Entry has not opened yet: check back soon.'];
    case 'FORBIDDEN':
      return ['Sign in first', 'This draw is for signed-in shop customers.'];
    case 'ALREADY_ENTERED':
      return ['Already entered', 'Your shop account is already in this draw.'];
    default:
      return ['Something went wrong', `${e.message} (${e.code})`];
  }
}

function refused(e) {
  if (e.code === 'SOLD_OUT') {
    show('soldout');
    return;
  }
  const [heading, text] = refusal(e);
  if (heading === 'Something went wrong') {
    failed(e);
    return;
  }
  $('closed-heading').textContent = heading;
  $('closed-text').textContent = text;
  show('closed');
}

function closed(seq) {
  if (seq?.state === 'scheduled' && seq.opensAt) {
    $('closed-heading').textContent = 'Not open yet';
    const at = new Date(seq.opensAt).toLocaleString();
    $('closed-text').textContent = `Registration opens at ${at}.`;
    reloadAt(seq.opensAt);
  }
  show('closed');
}

/** Comes back by itself when a stage opens, spread over a few seconds. */
function reloadAt(iso) {
  const wait = Date.parse(iso) - Date.now();
  if (wait > 0 && wait < 24 * 3600 * 1000) {
    setTimeout(() => location.reload(), wait + Math.random() * 5000);
  }
}

function failed(e) {
  $('error-text').textContent = `${e.message} (${e.code})`;
  $('retry').onclick = () => location.reload();
  show('error');
}

/** With no stage open, a past draw may still hold this person's result. */
async function closedFlow() {
  const draws = config.sequences.filter((s) => s.kind === 'draw' && s.state === 'closed');
  for (const seq of draws) {
    const entry = await registration(seq.id);
    if (entry) {
      if (entry.state === 'pending') showRegistered(seq, null);
      return;
    }
  }
  closed(config.sequences.find((s) => s.state === 'scheduled'));
}

async function main() {
  setAnnouncement(config.announcement);
  const current = config.current;
  try {
    if (current?.kind === 'queue') await queueFlow();
    else if (current?.kind === 'draw') await drawFlow(sequence(current.id));
    else await closedFlow();
  } catch (e) {
    failed(e);
  }
}

main();
