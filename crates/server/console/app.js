// Herald console: subscribe with GET /events, watch the events, publish with POST /publish.
//
// Plain JavaScript with no framework and no build step, embedded in the herald binary.
// The stream is read with fetch() and parsed here (the WHATWG event-stream rules) rather
// than with EventSource, for three reasons a debugging tool needs: EventSource hides
// events whose type it has no listener for, it cannot send an Authorization header, and
// it does not show its reconnects. The reconnect behaves as EventSource's does: wait the
// server's retry hint, come back with Last-Event-ID, resume without loss.
'use strict';

(() => {
  const MAX_ROWS = 1000;
  const MAX_LOG = 50;
  const MAX_BACKOFF_MS = 30000;
  const STORE_KEY = 'herald.console';

  const $ = (id) => document.getElementById(id);
  const el = {
    state: $('state'),
    connectForm: $('connect-form'),
    topics: $('topics'),
    user: $('user'),
    token: $('token'),
    lastId: $('last-id'),
    connect: $('connect'),
    disconnect: $('disconnect'),
    request: $('request'),
    connectionId: $('connection-id'),
    lastEventId: $('last-event-id'),
    reconnects: $('reconnects'),
    resumes: $('resumes'),
    resets: $('resets'),
    log: $('log'),
    publishForm: $('publish-form'),
    pubTopic: $('pub-topic'),
    pubEvent: $('pub-event'),
    pubData: $('pub-data'),
    pubUser: $('pub-user'),
    pubConnection: $('pub-connection'),
    publishResult: $('publish-result'),
    filter: $('filter'),
    clear: $('clear'),
    count: $('count'),
    empty: $('empty'),
    events: $('events'),
  };

  // "none" or "jwt", filled in by the server; anything else shows every field.
  const authMode = document.documentElement.dataset.authMode;
  if (authMode === 'none' || authMode === 'jwt') {
    document.body.classList.add('mode-' + authMode);
  }

  /** Parses text/event-stream as the WHATWG HTML standard says (9.2.6). */
  class SseParser {
    constructor(onEvent, onRetry) {
      this.onEvent = onEvent;
      this.onRetry = onRetry;
      this.rest = '';
      this.started = false;
      this.skipLf = false;
      this.lastId = '';
      this.reset();
    }

    reset() {
      this.type = '';
      this.data = [];
      this.id = null;
    }

    feed(text) {
      if (!this.started && text.length > 0) {
        this.started = true;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      // A CR ended the previous chunk: an LF starting this one belongs to it.
      if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
      this.skipLf = false;
      const s = this.rest + text;
      let start = 0;
      for (let i = 0; i < s.length; i++) {
        const c = s[i];
        if (c !== '\n' && c !== '\r') continue;
        this.line(s.slice(start, i));
        if (c === '\r') {
          if (i + 1 === s.length) this.skipLf = true;
          else if (s[i + 1] === '\n') i++;
        }
        start = i + 1;
      }
      this.rest = s.slice(start);
    }

    line(line) {
      if (line === '') {
        this.dispatch();
        return;
      }
      if (line.startsWith(':')) return; // a comment: Herald's heartbeat
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.type = value;
      else if (field === 'data') this.data.push(value);
      else if (field === 'id' && !value.includes('\0')) {
        this.lastId = value;
        this.id = value;
      } else if (field === 'retry' && /^\d+$/.test(value)) this.onRetry(Number(value));
    }

    dispatch() {
      if (this.data.length > 0) {
        this.onEvent({
          type: this.type || 'message',
          data: this.data.join('\n'),
          id: this.id,
          lastEventId: this.lastId,
        });
      }
      this.reset();
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const clock = (date) =>
    date.toLocaleTimeString([], { hour12: false }) +
    '.' + String(date.getMilliseconds()).padStart(3, '0');

  /** Splits the topics box into selectors. */
  const selectors = () => el.topics.value.split(/[\s,]+/).filter(Boolean);

  /** Builds GET /events?topic=…[&user=…] (the id goes in Last-Event-ID). */
  function eventsUrl(params) {
    const q = new URLSearchParams();
    params.selectors.forEach((s) => q.append('topic', s));
    if (params.user) q.set('user', params.user);
    return '/events?' + q.toString();
  }

  /** Reads Herald's JSON error shape, or describes whatever came instead. */
  async function readError(res) {
    const text = await res.text().catch(() => '');
    try {
      const err = JSON.parse(text).error;
      if (err && err.code) return `${res.status} ${err.code}: ${err.message}`;
    } catch (_) {
      // not JSON
    }
    return `${res.status} ${text.slice(0, 200) || res.statusText}`;
  }

  // ---- connection state ----

  const stream = {
    generation: 0,
    abort: null,
    params: null,
    lastId: '',
    retryMs: 2000,
    connectionId: null,
    reconnects: 0,
    resumes: 0,
    resets: 0,
  };

  function setState(state, text) {
    el.state.dataset.state = state;
    el.state.textContent = text || state;
    const busy = state !== 'idle' && state !== 'closed' && state !== 'refused';
    el.connect.textContent = busy ? 'Reconnect' : 'Connect';
    el.disconnect.disabled = !busy;
  }

  function log(text, kind) {
    const li = document.createElement('li');
    if (kind) li.className = kind;
    const time = document.createElement('time');
    time.textContent = clock(new Date());
    li.append(time, ' ', text);
    el.log.prepend(li);
    while (el.log.children.length > MAX_LOG) el.log.lastElementChild.remove();
  }

  function showFacts() {
    el.connectionId.textContent = stream.connectionId || '—';
    el.lastEventId.textContent = stream.lastId || '—';
    el.reconnects.textContent = String(stream.reconnects);
    el.resumes.textContent = String(stream.resumes);
    el.resets.textContent = String(stream.resets);
  }

  function start() {
    const params = {
      selectors: selectors(),
      user: authMode === 'jwt' ? '' : el.user.value.trim(),
      token: authMode === 'none' ? '' : el.token.value.trim(),
    };
    if (params.selectors.length === 0) {
      el.topics.setCustomValidity('Give at least one topic selector');
      el.topics.reportValidity();
      return;
    }
    el.topics.setCustomValidity('');
    stop(true);
    save();
    const generation = ++stream.generation;
    Object.assign(stream, {
      params,
      lastId: el.lastId.value.trim(),
      retryMs: 2000,
      connectionId: null,
      reconnects: 0,
      resumes: 0,
      resets: 0,
    });
    el.request.textContent = 'GET ' + eventsUrl(params);
    showFacts();
    run(generation);
  }

  function stop(quiet) {
    stream.generation++;
    if (stream.abort) stream.abort.abort();
    stream.abort = null;
    if (!quiet) {
      setState('closed');
      log('disconnected');
    }
  }

  /** Connects, reads, and reconnects until stopped or refused. */
  async function run(generation) {
    let failures = 0;
    for (let attempt = 0; generation === stream.generation; attempt++) {
      if (attempt > 0) {
        stream.reconnects++;
        showFacts();
      }
      const outcome = await once(generation, attempt);
      if (generation !== stream.generation) return;
      if (outcome.refused) {
        setState('refused', 'refused: ' + outcome.why);
        log('refused: ' + outcome.why, 'bad');
        return;
      }
      failures = outcome.opened ? 1 : failures + 1;
      const wait = outcome.waitMs ??
        Math.min(stream.retryMs * 2 ** (failures - 1), MAX_BACKOFF_MS);
      setState('reconnecting', `reconnecting in ${(wait / 1000).toFixed(1)} s`);
      log(`${outcome.why}; reconnecting in ${(wait / 1000).toFixed(1)} s`, 'warn');
      await sleep(wait);
    }
  }

  /** One request: resolves with why it ended. */
  async function once(generation, attempt) {
    const { params } = stream;
    const controller = new AbortController();
    stream.abort = controller;
    const headers = { Accept: 'text/event-stream' };
    if (params.token) headers.Authorization = 'Bearer ' + params.token;
    const resumeFrom = stream.lastId;
    if (resumeFrom) headers['Last-Event-ID'] = resumeFrom;
    setState('connecting', attempt > 0 ? 'reconnecting…' : 'connecting…');
    let res;
    try {
      res = await fetch(eventsUrl(params), {
        headers,
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch (err) {
      return { why: 'cannot connect (' + err.message + ')' };
    }
    if (!res.ok) {
      const why = await readError(res);
      if (res.status === 429 || res.status >= 500) {
        const after = Number(res.headers.get('Retry-After'));
        return { why, waitMs: after > 0 ? after * 1000 : undefined };
      }
      return { refused: true, why };
    }
    setState('open');
    if (resumeFrom && attempt > 0) {
      stream.resumes++;
      log('open; resuming after ' + resumeFrom, 'good');
    } else {
      log(resumeFrom ? 'open; resuming after ' + resumeFrom : 'open', 'good');
    }
    showFacts();
    const parser = new SseParser(
      (event) => generation === stream.generation && received(event),
      (ms) => {
        stream.retryMs = ms;
      },
    );
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    } catch (err) {
      return { opened: true, why: 'stream broken (' + err.message + ')' };
    }
    return { opened: true, why: 'the server ended the stream' };
  }

  function received(event) {
    if (event.id !== null) stream.lastId = event.lastEventId;
    if (event.type === 'herald.connected') {
      try {
        stream.connectionId = JSON.parse(event.data).connection || null;
      } catch (_) {
        stream.connectionId = null;
      }
      log('connection ' + stream.connectionId);
    } else if (event.type === 'herald.reset') {
      stream.resets++;
      log('reset: events were missed, refetch state (' + event.data + ')', 'bad');
    }
    showFacts();
    addRow(event);
  }

  // ---- the event list ----

  /** Topics of events this console published, by id: the stream itself has none. */
  const published = new Map();
  /** Rendered rows by event id, to fill in a topic learnt after the row was drawn. */
  const rowsById = new Map();
  const searchText = new WeakMap();
  let rowCount = 0;

  function knownTopic(event) {
    if (event.id && published.has(event.id)) return published.get(event.id);
    if (event.type.startsWith('herald.')) return null;
    const subscribed = stream.params ? stream.params.selectors : [];
    if (subscribed.length === 1 && !/(^|\.)[*>](\.|$)/.test(subscribed[0])) {
      return subscribed[0];
    }
    return null;
  }

  function pretty(data) {
    try {
      const value = JSON.parse(data);
      if (typeof value === 'object' && value !== null) return JSON.stringify(value, null, 2);
    } catch (_) {
      // not JSON: shown as sent
    }
    return data;
  }

  function cell(className, text, title) {
    const span = document.createElement('span');
    span.className = className;
    span.textContent = text;
    if (title) span.title = title;
    return span;
  }

  function setTopic(row, topic) {
    const span = row.querySelector('.topic');
    span.textContent = topic || '—';
    span.title = topic ? 'topic' : 'unknown: the SSE stream carries no topic';
    searchText.set(row, searchText.get(row) + ' ' + (topic || '').toLowerCase());
  }

  function addRow(event) {
    const row = document.createElement('li');
    row.className = 'event' + (event.type.startsWith('herald.') ? ' system' : '');
    if (event.type === 'herald.reset') row.classList.add('reset');
    const meta = document.createElement('div');
    meta.className = 'meta';
    const time = document.createElement('time');
    time.textContent = clock(new Date());
    meta.append(
      time,
      cell('topic', '—'),
      cell('type', event.type, 'event type'),
      cell('id', event.id || '', 'event id'),
    );
    const data = document.createElement('pre');
    data.className = 'data';
    data.textContent = pretty(event.data);
    row.append(meta, data);
    searchText.set(row, [event.type, event.id || '', event.data].join(' ').toLowerCase());
    setTopic(row, knownTopic(event));
    if (event.id) rowsById.set(event.id, row);
    row.hidden = !matches(row);
    el.events.prepend(row);
    rowCount++;
    while (rowCount > MAX_ROWS) {
      const last = el.events.lastElementChild;
      const id = last.querySelector('.id').textContent;
      if (id) rowsById.delete(id);
      last.remove();
      rowCount--;
    }
    showCount();
  }

  function matches(row) {
    const needle = el.filter.value.trim().toLowerCase();
    return needle === '' || searchText.get(row).includes(needle);
  }

  function showCount() {
    const shown = el.events.querySelectorAll('li.event:not([hidden])').length;
    el.count.textContent = shown === rowCount ? String(rowCount) : `${shown} of ${rowCount}`;
    el.empty.hidden = rowCount > 0;
  }

  function applyFilter() {
    for (const row of el.events.children) row.hidden = !matches(row);
    showCount();
  }

  // ---- publishing ----

  /** The publish body: data is JSON when it parses, else the text itself (like the CLI). */
  function publishBody() {
    const text = el.pubData.value;
    let data;
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = text;
    }
    const body = { topic: el.pubTopic.value.trim(), data };
    const event = el.pubEvent.value.trim();
    if (event) body.event = event;
    const user = el.pubUser.value.trim();
    if (user) body.user = user;
    if (el.pubConnection.checked) body.connection = stream.connectionId || '';
    return body;
  }

  async function publish() {
    const body = publishBody();
    if (!body.topic) {
      el.pubTopic.setCustomValidity('A topic is required');
      el.pubTopic.reportValidity();
      return;
    }
    el.pubTopic.setCustomValidity('');
    if (el.pubConnection.checked && !stream.connectionId) {
      el.publishResult.textContent = 'connect first: no connection id yet';
      el.publishResult.className = 'bad';
      return;
    }
    save();
    const headers = { 'Content-Type': 'application/json' };
    const token = authMode === 'none' ? '' : el.token.value.trim();
    if (token) headers.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch('/publish', { method: 'POST', headers, body: JSON.stringify(body) });
    } catch (err) {
      el.publishResult.textContent = 'cannot reach the server (' + err.message + ')';
      el.publishResult.className = 'bad';
      return;
    }
    if (!res.ok) {
      el.publishResult.textContent = await readError(res);
      el.publishResult.className = 'bad';
      return;
    }
    const reply = await res.json();
    published.set(reply.id, body.topic);
    // The event may have arrived on the stream before this reply did.
    const row = rowsById.get(reply.id);
    if (row) setTopic(row, body.topic);
    el.publishResult.textContent = 'published ' + reply.id;
    el.publishResult.className = 'good';
  }

  // ---- form values kept across visits (never the token) ----

  const kept = ['topics', 'user', 'pubTopic', 'pubEvent', 'pubData', 'pubUser'];

  function save() {
    try {
      const values = {};
      kept.forEach((k) => {
        values[k] = el[k].value;
      });
      localStorage.setItem(STORE_KEY, JSON.stringify(values));
    } catch (_) {
      // storage may be off; nothing to keep then
    }
  }

  function restore() {
    try {
      const values = JSON.parse(localStorage.getItem(STORE_KEY) || '{}');
      kept.forEach((k) => {
        if (typeof values[k] === 'string') el[k].value = values[k];
      });
    } catch (_) {
      // nothing kept
    }
    // Links may carry the subscription: /?topic=orders.*&topic=users.42.>
    const query = new URLSearchParams(location.search);
    if (query.has('topic')) el.topics.value = query.getAll('topic').join('\n');
    if (query.has('user')) el.user.value = query.get('user');
  }

  // ---- wiring ----

  el.connectForm.addEventListener('submit', (e) => {
    e.preventDefault();
    start();
  });
  el.disconnect.addEventListener('click', () => stop(false));
  el.topics.addEventListener('keydown', (e) => {
    // Enter connects; Shift+Enter adds a line.
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      el.connectForm.requestSubmit();
    }
  });
  el.publishForm.addEventListener('submit', (e) => {
    e.preventDefault();
    publish();
  });
  el.pubData.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      el.publishForm.requestSubmit();
    }
  });
  el.filter.addEventListener('input', applyFilter);
  el.filter.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      el.filter.value = '';
      applyFilter();
    }
  });
  el.clear.addEventListener('click', () => {
    el.events.replaceChildren();
    rowsById.clear();
    rowCount = 0;
    showCount();
  });
  document.addEventListener('keydown', (e) => {
    const typing = e.target.closest('input, textarea, select, [contenteditable]');
    if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      el.filter.focus();
    }
  });

  restore();
  showCount();
  showFacts();
  setState('idle');
})();
