// Two relay-only RTCPeerConnections (iceTransportPolicy "relay") in one headless Chromium
// page with a data channel between them, through the TURN URLs a ternd credentials
// endpoint hands out: node relay_ice_servers.mjs '<json>' with
// {"endpoint": "http://HOST:PORT", "token": "...", "transport": "udp"|"tcp"|"tls",
//  "messages": N, "chromiumArgs": [...]}.
// It POSTs /v1/ice-servers with the bearer token, keeps the one URL for the transport
// (turn:...?transport=udp, turn:...?transport=tcp or turns:...), sends N messages from a to
// b, b echoes each, and reads both sides' selected candidate pair from getStats. Prints one
// JSON line: {"ok", "transport", "url", "sent", "received", "echoed", "receivedInOrder",
// "echoedInOrder", "a", "b", "iceErrors", "ms", "error"}; a and b are {"local", "remote",
// "relayProtocol", "state"} of that side's selected pair. Exits 0 only when every message
// arrived in order both ways over relay/relay pairs with the expected relayProtocol.
// "iceErrors" lists the icecandidateerror events: one 701 per side and URL is expected,
// since Chromium asks for AAAA too and the host has an A record only. Every wait is
// bounded (fetch 5 s, data channel 15 s, messages 10 s, 40 s in all; ICE failing or no
// relay candidate fails at once), so a broken relay is a failure, not a hang.
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2]);
const started = Date.now();
const finish = (result) => {
  result.ms = Date.now() - started;
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
};
const deadline = setTimeout(() => finish({ ok: false, transport: args.transport, error: 'timed out after 40 s' }), 40000);

const want = {
  udp: (u) => u.startsWith('turn:') && u.endsWith('?transport=udp'),
  tcp: (u) => u.startsWith('turn:') && u.endsWith('?transport=tcp'),
  tls: (u) => u.startsWith('turns:'),
}[args.transport];

let result = { ok: false, transport: args.transport };
let browser;
try {
  // The credentials, fetched as an app's page or backend would.
  const resp = await fetch(`${args.endpoint}/v1/ice-servers`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${args.token}` },
    signal: AbortSignal.timeout(5000),
  });
  if (resp.status !== 200) throw new Error(`/v1/ice-servers: ${resp.status} ${await resp.text()}`);
  const body = await resp.json();
  const server = body.iceServers.find((s) => s.username && s.urls.some(want));
  if (!server) throw new Error(`no ${args.transport} TURN URL in ${JSON.stringify(body.iceServers)}`);
  const iceServer = { urls: server.urls.filter(want).slice(0, 1), username: server.username, credential: server.credential };
  result.url = iceServer.urls[0];

  browser = await chromium.launch({
    executablePath: process.env.TERND_CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(args.chromiumArgs || []),
    ],
  });
  const page = await browser.newPage();
  page.on('console', (m) => console.error('page:', m.text()));
  Object.assign(result, await page.evaluate(async ({ iceServer, messages }) => {
    const config = { iceServers: [iceServer], iceTransportPolicy: 'relay' };
    const a = new RTCPeerConnection(config);
    const b = new RTCPeerConnection(config);
    const errors = [];
    for (const [name, pc] of [['a', a], ['b', b]]) {
      pc.onicecandidateerror = (e) => errors.push(`${name}: ${e.url} ${e.errorCode} ${e.errorText}`);
    }
    const bounded = (p, ms, what) => Promise.race([p, failed, new Promise((_, reject) => setTimeout(
      () => reject(new Error(`${what} within ${ms / 1000} s; ICE errors: ${errors.join('; ') || 'none'}; ICE a ${a.iceConnectionState}, b ${b.iceConnectionState}`)), ms))]);
    // Fail fast, not at the timeout, when ICE gives up or a side gathers no relayed
    // candidate at all.
    let gaveUp;
    const failed = new Promise((_, reject) => { gaveUp = reject; });
    failed.catch(() => {});
    const gathered = { a: 0, b: 0 };
    for (const [name, pc, other] of [['a', a, b], ['b', b, a]]) {
      pc.onicecandidate = (e) => {
        if (e.candidate) { gathered[name] += 1; other.addIceCandidate(e.candidate); }
        else if (gathered[name] === 0) gaveUp(new Error(`${name} gathered no relay candidate; ICE errors: ${errors.join('; ') || 'none'}`));
      };
      pc.oniceconnectionstatechange = () => {
        if (pc.iceConnectionState === 'failed') gaveUp(new Error(`ICE failed on ${name} (${gathered.a} + ${gathered.b} relay candidates); ICE errors: ${errors.join('; ') || 'none'}`));
      };
    }
    const received = [];
    const echoed = [];
    let bOpen;
    const bChannel = new Promise((resolve) => { bOpen = resolve; });
    b.ondatachannel = (e) => {
      e.channel.onmessage = (m) => { received.push(m.data); e.channel.send(m.data); };
      bOpen();
    };
    const ch = a.createDataChannel('ternd', { ordered: true });
    const opened = new Promise((resolve) => { ch.onopen = resolve; });
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
    let echoesDone;
    const allEchoed = new Promise((resolve) => { echoesDone = resolve; });
    ch.onmessage = (m) => { echoed.push(m.data); if (echoed.length === messages) echoesDone(); };
    const out = { sent: 0 };
    const inOrder = (list) => list.length === messages && list.every((m, i) => m === `message ${i}`);
    const pairOf = async (pc) => {
      const stats = await pc.getStats();
      let pair;
      stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
      if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
      const local = pair && stats.get(pair.localCandidateId);
      const remote = pair && stats.get(pair.remoteCandidateId);
      return {
        state: pair && pair.state,
        local: local && `${local.candidateType} ${local.address}:${local.port}`,
        remote: remote && `${remote.candidateType} ${remote.address}:${remote.port}`,
        relayProtocol: local && local.relayProtocol,
      };
    };
    try {
      await bounded(opened, 15000, 'data channel did not open');
      await bounded(bChannel, 5000, 'b saw no data channel');
      for (let i = 0; i < messages; i++) { ch.send(`message ${i}`); out.sent += 1; }
      await bounded(allEchoed, 10000, `only ${echoed.length} of ${messages} echoes came back`);
      out.a = await pairOf(a);
      out.b = await pairOf(b);
    } catch (e) {
      out.error = String(e.message || e);
    }
    out.iceErrors = errors;
    out.received = received.length;
    out.echoed = echoed.length;
    out.receivedInOrder = inOrder(received);
    out.echoedInOrder = inOrder(echoed);
    a.close(); b.close();
    return out;
  }, { iceServer, messages: args.messages }));
  const expected = args.transport;
  const relayed = (side) => side && String(side.local).startsWith('relay ')
    && String(side.remote).startsWith('relay ') && side.relayProtocol === expected;
  result.ok = !result.error && result.receivedInOrder && result.echoedInOrder
    && relayed(result.a) && relayed(result.b);
  if (!result.ok && !result.error) result.error = 'not every message in order over relay/relay pairs with the expected relayProtocol';
} catch (e) {
  result.ok = false;
  result.error = String(e.message || e);
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(deadline);
}
finish(result);
