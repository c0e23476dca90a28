// A relay-only WebRTC data channel between two peer connections in one headless Chromium
// page, through the TURN server given: node relay_datachannel.mjs '<json>' with
// {"urls": [...], "username": "...", "credential": "...", "messages": N}. Prints one JSON
// line: {"ok", "sent", "echoed", "local", "remote", "error"}; exits 0 only when every
// message came back over a relayed candidate pair. Bounded: 40 s in all.
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2]);
const deadline = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: 'timed out after 40 s' }));
  process.exit(2);
}, 40000);

const browser = await chromium.launch({
  executablePath: process.env.TERND_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let result;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.error('page:', m.text()));
  result = await page.evaluate(async ({ urls, username, credential, messages }) => {
    const config = { iceServers: [{ urls, username, credential }], iceTransportPolicy: 'relay' };
    const a = new RTCPeerConnection(config);
    const b = new RTCPeerConnection(config);
    const errors = [];
    for (const pc of [a, b]) {
      pc.onicecandidateerror = (e) => errors.push(`${e.url} ${e.errorCode} ${e.errorText}`);
    }
    a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
    b.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
    const ch = a.createDataChannel('ternd', { ordered: true });
    const opened = new Promise((resolve, reject) => {
      ch.onopen = resolve;
      setTimeout(() => reject(new Error(`data channel did not open in 20 s; ICE errors: ${errors.join('; ') || 'none'}; ICE state ${a.iceConnectionState}`)), 20000);
    });
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
    await opened;
    let echoed = 0;
    const done = new Promise((resolve) => {
      ch.onmessage = () => { echoed += 1; if (echoed === messages) resolve(); };
      setTimeout(resolve, 10000);
    });
    for (let i = 0; i < messages; i++) ch.send(`message ${i}`);
    await done;
    // The pair in use: both candidates relayed.
    const stats = await a.getStats();
    let pair;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    a.close(); b.close();
    return {
      sent: messages,
      echoed,
      local: local && `${local.candidateType} ${local.address}:${local.port}`,
      remote: remote && `${remote.candidateType} ${remote.address}:${remote.port}`,
    };
  }, args);
  result.ok = result.echoed === args.messages
    && String(result.local).startsWith('relay') && String(result.remote).startsWith('relay');
} catch (e) {
  result = { ok: false, error: String(e) };
} finally {
  await browser.close();
  clearTimeout(deadline);
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
