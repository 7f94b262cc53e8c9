// The public status page's script: re-reads the experience's status every
// few seconds and fills in the server-rendered page (status.html).

import { createClient } from '/sdk/v1/velvet.js';

const config = JSON.parse(document.getElementById('velvet-config').textContent);
// One try per refresh: the next refresh is the retry.
const client = createClient(location.origin, { maxRetries: 0, realtime: false });
const $ = (id) => document.getElementById(id);
const EVERY_MS = 5000;

// The same words as the server's first rendering (src/web/pages.rs).
const LABELS = {
  open: 'Open',
  paused: 'Paused',
  sold_out: 'Sold out',
  scheduled: 'Opens soon',
  closed: 'Closed',
};

function waitLabel(seconds) {
  if (seconds == null) return 'Not known yet';
  if (seconds < 60) return 'Less than a minute';
  if (seconds < 3600) {
    const minutes = Math.ceil(seconds / 60);
    return `About ${minutes} minute${minutes === 1 ? '' : 's'}`;
  }
  return `About ${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

const count = (n) => (n == null ? '–' : n.toLocaleString());

function render(status) {
  $('s-state').textContent = LABELS[status.state] || 'Unknown';
  $('s-state').dataset.state = status.state;
  $('s-depth').textContent = count(status.queueDepth);
  $('s-wait').textContent = waitLabel(status.estimatedWaitSeconds);
  $('s-admitted').textContent = count(status.admittedTotal);
  $('s-inventory').textContent = count(status.inventoryRemaining);
  $('s-announcement').hidden = !status.announcement;
  $('s-announcement-text').textContent = status.announcement || '';
  const updated = $('s-updated');
  updated.dateTime = status.updatedAt;
  updated.textContent = new Date(status.updatedAt).toLocaleTimeString();
}

async function refresh() {
  let wait = EVERY_MS;
  // A tab in the background need not keep asking.
  if (!document.hidden) {
    try {
      render(await client.experiences.status(config.experienceId));
      $('s-error').hidden = true;
    } catch (e) {
      $('s-error').hidden = false;
      if (e.retryAfterSeconds) wait = Math.max(wait, e.retryAfterSeconds * 1000);
    }
  }
  setTimeout(refresh, wait);
}

render(config.status);
setTimeout(refresh, EVERY_MS);
