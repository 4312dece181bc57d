// Per-user notifications with Herald, in plain JavaScript.
//
// The page shows the two shapes of stream that apps built on a hand-rolled SSE endpoint
// use, on Herald:
//
// 1. Notifications: one long-lived EventSource carrying everything addressed to this
//    user. It stays open; the browser reconnects by itself after a drop and Herald
//    replays what was missed (Last-Event-ID), so nothing is lost.
// 2. An export: a stream of `chunk` events that ends with an `end` event. The page
//    closes the EventSource itself on `end`. It must: to EventSource, a stream that stops
//    is a dropped connection, and it would reconnect forever.
//
// Settings come from the page's URL: ?herald=http://127.0.0.1:8080&user=alice.
'use strict';

const params = new URLSearchParams(location.search);
const HERALD = params.get('herald') || 'http://127.0.0.1:8080';
const USER = params.get('user') || 'alice';

const $ = (id) => document.getElementById(id);

// Where to subscribe. With `make run` Herald runs in auth mode "none", where `user`
// says who is subscribing: events published with "user": "alice" reach alice's streams
// and no one else's. In production (auth mode "jwt") leave `user` out: the identity
// comes from the token, in a cookie your backend sets (docs/security.md), which
// `withCredentials` below sends along to Herald's origin.
function streamUrl(topic, lastEventId) {
  const query = new URLSearchParams({ topic, user: USER });
  if (lastEventId) query.set('lastEventId', lastEventId);
  return `${HERALD}/events?${query}`;
}

// ---- 1. notifications ----

// Remember the newest id across page loads, so a reload resumes where the last page
// stopped. (Within one page the browser does this itself with Last-Event-ID.)
const ID_KEY = `herald-example.last-id.${USER}`;
const storage = {
  get: () => sessionStorage.getItem(ID_KEY),
  set: (id) => sessionStorage.setItem(ID_KEY, id),
  clear: () => sessionStorage.removeItem(ID_KEY),
};

let unread = 0;

function showNotification(notification) {
  const li = document.createElement('li');
  const title = document.createElement('strong');
  title.textContent = notification.title;
  li.append(title, notification.body || '');
  $('notifications').prepend(li);
  unread += 1;
  $('unread').textContent = String(unread);
  $('unread').dataset.count = String(unread);
}

function openNotifications() {
  // One connection for everything this user gets: `users.alice.>` would also do, for
  // all of alice's topics on this single connection.
  const topic = `users.${USER}.notifications`;
  const es = new EventSource(streamUrl(topic, storage.get()), { withCredentials: true });

  // Herald's first event on every connection. Its `connection` id can address
  // events to this one tab ("connection": "<id>" when publishing).
  es.addEventListener('herald.connected', () => {
    $('status').textContent = 'live';
  });

  // Named events go to listeners for their name, not to onmessage.
  es.addEventListener('notification', (e) => {
    showNotification(JSON.parse(e.data));
    storage.set(e.lastEventId);
  });

  // Herald could not replay everything since our last id (it expired, or the server
  // restarted): the list may have holes. Refetch the state, then keep streaming.
  es.addEventListener('herald.reset', () => {
    $('missed').hidden = false;
  });

  // The browser retries by itself while readyState is CONNECTING (0). CLOSED (2) means
  // it gave up: Herald refused the request (a missing or expired token, say).
  es.onerror = () => {
    $('status').textContent =
      es.readyState === EventSource.CLOSED ? 'refused: check your token' : 'reconnecting…';
  };
  return es;
}

$('reload').addEventListener('click', () => {
  // In your app: refetch the notifications from your API. Here: start afresh.
  storage.clear();
  location.reload();
});

// ---- 2. an export, streamed in chunks until `end` ----

function openExport() {
  const job = Math.random().toString(36).slice(2, 10);
  const topic = `users.${USER}.exports.${job}`;
  const output = $('export-output');
  const status = $('export-status');
  output.textContent = '';
  status.dataset.job = job;
  status.dataset.state = 'waiting';
  status.textContent = `export ${job}: waiting for the server…`;
  $('export').disabled = true;

  // Subscribe first, then ask for the export: events published before the
  // subscription exists would not be waited for.
  const es = new EventSource(streamUrl(topic), { withCredentials: true });
  es.addEventListener(
    'herald.connected',
    () => {
      status.dataset.state = 'streaming';
      status.textContent = `export ${job}: streaming…`;
      startExport(topic);
    },
    { once: true }, // not again after a reconnect: the export is already running
  );
  es.addEventListener('chunk', (e) => {
    output.textContent += e.data;
  });
  es.addEventListener('end', (e) => {
    // Close it, or the browser would reconnect and wait on this topic forever.
    es.close();
    const { rows } = JSON.parse(e.data);
    status.dataset.state = 'done';
    status.textContent = `export ${job}: done, ${rows} rows`;
    $('export').disabled = false;
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      status.dataset.state = 'failed';
      status.textContent = `export ${job}: refused`;
      $('export').disabled = false;
    } else {
      status.textContent = `export ${job}: connection lost, resuming…`;
    }
  };
}

// Stands in for your backend. In your app this is a request to your API, and the
// backend publishes the chunks (in-process with herald-bus, or with POST /publish).
// Here the page publishes them itself, which `make run` allows (auth mode "none").
async function startExport(topic) {
  const rows = ['id,title', '1,Invoice paid', '2,Order shipped', '3,Password changed'];
  const publish = (event) =>
    fetch(`${HERALD}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...event, topic, user: USER }),
    });
  for (const row of rows) {
    await publish({ event: 'chunk', data: `${row}\n` });
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  await publish({ event: 'end', data: { rows: rows.length - 1 } });
}

$('export').addEventListener('click', openExport);
$('user').textContent = USER;
openNotifications();
